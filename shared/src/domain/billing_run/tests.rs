use super::*;
use serde_json::json;
use strum::VariantArray;
use time::macros::datetime;
use Status::*;

const NOW: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

pub fn body() -> Value {
    json!({
        "business_unit_id": "bu-1",
        "name": "November statements",
        "expiring_credit_card_reminder_options": {
            "order_type_restriction": "none", "order_types": [],
            "reminders": [{"card_expiration_date_start": "2026-12-01", "card_expiration_date_end": "2026-12-31", "notice_id": "n-1"}]
        },
        "installment_schedule_cancellation_options": {"date_range_start": "2026-11-01", "date_range_end": "2026-11-30"},
        "installment_schedule_options": {"date_range_start": "2026-11-01", "date_range_end": "2026-11-30T23:59:59Z"},
        "installment_schedule_reminder_options": {"anything": [1, 2.5, {"kept": "as sent"}]},
        "statement_options": {"customer_type": "both", "business_unit_ids": ["bu-1"]}
    })
}

fn run() -> BillingRun {
    BillingRun::create(parse_request(&body(), Mode::Create).unwrap(), uuid::Uuid::new_v4(), "7", NOW)
}

fn put_body(run: &BillingRun, changes: Value) -> Value {
    let mut body = serde_json::to_value(run).unwrap();
    for (k, v) in changes.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn put(current: &BillingRun, changes: Value, admin: bool) -> Result<PutOutcome, DomainError> {
    let request = parse_request(&put_body(current, changes), Mode::Put)?;
    apply_put(current, &Put { request: &request, admin, by: "8", now: NOW })
}

/// A run in `status`, with the schedule dates that scheduled statuses need.
fn at(status: Status) -> BillingRun {
    BillingRun {
        status,
        scheduled_preprocessing_date: Some("2026-11-25".into()),
        scheduled_run_date: Some("2026-11-26".into()),
        ..run()
    }
}

fn pointers(result: Result<Request, DomainError>) -> Vec<String> {
    match result {
        Err(DomainError::Invalid { errors, .. }) => errors.into_iter().map(|e| e.pointer).collect(),
        other => panic!("expected 400, got {other:?}"),
    }
}

#[test]
fn given_every_pair_of_statuses_then_the_client_table_decides() {
    let allowed = |from: Status, to: Status| -> bool {
        matches!(
            (from, to),
            (Draft, Scheduled | Cancelled)
                | (Scheduled, Draft | Cancelled)
                | (ReadyForExecution, ScheduledForExecution | Draft | Cancelled)
                | (ScheduledForExecution, ReadyForExecution | Cancelled)
                | (Error | TimedOut, Draft | Cancelled)
        ) || from == to
    };
    for from in Status::VARIANTS {
        for to in Status::VARIANTS {
            assert_eq!(transition(*from, *to).is_ok(), allowed(*from, *to), "{from:?} -> {to:?}");
            if let Err(DomainError::Conflict(message)) = transition(*from, *to) {
                assert!(message.contains(from.name()), "{message}");
            }
        }
    }
    assert!(matches!(transition(Running, Draft), Err(DomainError::Conflict(m)) if m.contains("busy")));
}

#[test]
fn given_a_put_then_each_transition_is_allowed_or_refused_as_the_table_says() {
    for from in Status::VARIANTS {
        for to in Status::VARIANTS.iter().filter(|s| !s.system_only()) {
            let changes = json!({"status": to.name()});
            let outcome = put(&at(*from), changes, false);
            match outcome {
                Ok(PutOutcome::Unchanged) => assert_eq!(from, to),
                Ok(PutOutcome::Changed { run, .. }) => {
                    assert!(from.client_targets().contains(to), "{from:?} -> {to:?} was allowed");
                    assert_eq!((run.status, run.sys_version, run.sys_last_modified_by_id.as_str()), (*to, 2, "8"));
                }
                Err(DomainError::Conflict(_)) => {
                    assert!(!from.client_targets().contains(to), "{from:?} -> {to:?} refused")
                }
                Err(other) => panic!("{from:?} -> {to:?}: {other:?}"),
            }
        }
    }
}

#[test]
fn given_a_system_status_or_a_bad_create_status_then_400() {
    for status in Status::VARIANTS.iter().filter(|s| s.system_only()) {
        let body = put_body(&run(), json!({"status": status.name()}));
        let request = parse_request(&body, Mode::Put).unwrap();
        let refused = request.check_status(&run());
        assert!(
            matches!(refused, Err(DomainError::Invalid { errors, .. }) if errors[0].pointer == "/status"),
            "{status:?}"
        );
        assert!(request.check_status(&at(*status)).is_ok(), "sending the current {status:?} back is no request");
    }
    let mut create = body();
    create["status"] = json!("cancelled");
    assert_eq!(pointers(parse_request(&create, Mode::Create)), vec!["/status"]);
    create["status"] = json!("scheduled");
    assert_eq!(
        pointers(parse_request(&create, Mode::Create)),
        vec!["/scheduled_preprocessing_date", "/scheduled_run_date"],
        "scheduled needs both dates"
    );
    create["scheduled_preprocessing_date"] = json!("2026-11-26");
    create["scheduled_run_date"] = json!("2026-11-25T10:00:00+00:00");
    assert_eq!(pointers(parse_request(&create, Mode::Create)), vec!["/scheduled_run_date"], "preprocessing after run");
    create["scheduled_run_date"] = json!("2026-11-26T10:00:00+00:00");
    let ok = parse_request(&create, Mode::Create).unwrap();
    assert_eq!(ok.content.scheduled_run_date.as_deref(), Some("2026-11-26T10:00:00+00:00"), "answered as sent");
}

#[test]
fn given_bad_bodies_then_400_names_each_field_by_pointer() {
    let cases: Vec<(Value, Mode, &str)> = vec![
        (json!({"id": uuid::Uuid::new_v4().to_string()}), Mode::Create, "/id"),
        (json!({"name": ""}), Mode::Create, "/name"),
        (json!({"name": "x".repeat(256)}), Mode::Create, "/name"),
        (json!({"business_unit_id": "b".repeat(101)}), Mode::Create, "/business_unit_id"),
        (json!({"notification_email": "not-an-email"}), Mode::Create, "/notification_email"),
        (
            json!({"notification_email": format!("{}@example.com", "a".repeat(250))}),
            Mode::Create,
            "/notification_email",
        ),
        (json!({"colour": "red"}), Mode::Create, "/colour"),
        (json!({"send_statements": "yes"}), Mode::Create, "/send_statements"),
        (json!({"statement_options": {"customer_type": "aliens"}}), Mode::Create, "/statement_options/customer_type"),
        (
            json!({"statement_options": {"business_unit_ids": [""]}}),
            Mode::Create,
            "/statement_options/business_unit_ids/0",
        ),
        (json!({"statement_options": {"extra": 1}}), Mode::Create, "/statement_options/extra"),
        (
            json!({"installment_schedule_options": {"date_range_start": "2026-12-01", "date_range_end": "2026-11-01"}}),
            Mode::Create,
            "/installment_schedule_options/date_range_end",
        ),
        (
            json!({"installment_schedule_options": {"date_range_start": "2026-13-01", "date_range_end": "2026-11-01"}}),
            Mode::Create,
            "/installment_schedule_options/date_range_start",
        ),
        (
            json!({"installment_schedule_options": {"date_range_start": "2026-11-01"}}),
            Mode::Create,
            "/installment_schedule_options/date_range_end",
        ),
        (
            json!({"installment_schedule_options": {"date_range_start": "2026-11-01", "date_range_end": "2026-11-02", "card_type_restriction": "some"}}),
            Mode::Create,
            "/installment_schedule_options/card_type_restriction",
        ),
        (
            json!({"installment_schedule_cancellation_options": null}),
            Mode::Create,
            "/installment_schedule_cancellation_options",
        ),
        (
            json!({"installment_schedule_reminder_options": {"big": "x".repeat(11 * 1024)}}),
            Mode::Create,
            "/installment_schedule_reminder_options",
        ),
        (json!({"installment_schedule_reminder_options": []}), Mode::Create, "/installment_schedule_reminder_options"),
        (
            json!({"expiring_credit_card_reminder_options": {"reminders": [{"card_expiration_date_start": "2026-12-01", "card_expiration_date_end": "2026-12-31"}]}}),
            Mode::Create,
            "/expiring_credit_card_reminder_options/reminders/0/notice_id",
        ),
        (
            json!({"expiring_credit_card_reminder_options": {"reminders": [{"id": 3, "card_expiration_date_start": "2026-12-01", "card_expiration_date_end": "2026-12-31", "notice_id": "a"}, {"id": 3, "card_expiration_date_start": "2026-12-01", "card_expiration_date_end": "2026-12-31", "notice_id": "b"}]}}),
            Mode::Create,
            "/expiring_credit_card_reminder_options/reminders/1/id",
        ),
        (
            json!({"expiring_credit_card_reminder_options": {"reminders": [{"card_expiration_date_start": "2027-01-01", "card_expiration_date_end": "2026-12-31", "notice_id": "a"}]}}),
            Mode::Create,
            "/expiring_credit_card_reminder_options/reminders/0/card_expiration_date_end",
        ),
        (
            json!({"expiring_credit_card_reminder_options": {"order_types": vec!["t"; 101]}}),
            Mode::Create,
            "/expiring_credit_card_reminder_options/order_types",
        ),
        (json!({"sys_version": -1}), Mode::Put, "/sys_version"),
        (json!({"sys_locked": "no"}), Mode::Put, "/sys_locked"),
        (json!({"id": "not-a-uuid"}), Mode::Put, "/id"),
        (json!({"status": "paused"}), Mode::Put, "/status"),
    ];
    for (changes, mode, pointer) in cases {
        let mut body = if mode == Mode::Put { put_body(&run(), json!({})) } else { body() };
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        let found = pointers(parse_request(&body, mode));
        assert!(found.contains(&pointer.to_owned()), "{changes}: expected {pointer}, got {found:?}");
    }
    for missing in ["business_unit_id", "name", "statement_options", "installment_schedule_options"] {
        let mut body = body();
        body.as_object_mut().unwrap().remove(missing);
        assert_eq!(pointers(parse_request(&body, Mode::Create)), vec![format!("/{missing}")]);
    }
    let mut no_status = put_body(&run(), json!({}));
    no_status.as_object_mut().unwrap().remove("status");
    assert_eq!(pointers(parse_request(&no_status, Mode::Put)), vec!["/status"]);
}

#[test]
fn given_a_new_run_then_every_field_is_present_and_reminders_get_ids() {
    let mut create = body();
    create["expiring_credit_card_reminder_options"]["reminders"] = json!([
        {"card_expiration_date_start": "2026-12-01", "card_expiration_date_end": "2026-12-31", "notice_id": "a"},
        {"id": 7, "card_expiration_date_start": "2026-12-01", "card_expiration_date_end": "2026-12-31", "notice_id": "b"},
        {"card_expiration_date_start": "2026-12-01", "card_expiration_date_end": "2026-12-31", "notice_id": "c"}
    ]);
    let run = BillingRun::create(parse_request(&create, Mode::Create).unwrap(), uuid::Uuid::new_v4(), "7", NOW);
    let ids: Vec<u64> = run.expiring_credit_card_reminder_options.reminders.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![8, 7, 9], "a reminder without an id gets the largest id + 1");
    let out = serde_json::to_value(&run).unwrap();
    let keys: Vec<&str> = out.as_object().unwrap().keys().map(String::as_str).collect();
    let mut fields = FIELDS.to_vec();
    fields.sort_unstable();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    assert_eq!(keys_sorted, fields, "every field of the contract, and only those");
    assert_eq!(
        (out["status"].as_str(), out["sys_version"].as_u64(), out["sys_locked"].as_bool()),
        (Some("draft"), Some(1), Some(false))
    );
    assert_eq!((out["error"].clone(), out["statistics"].clone()), (Value::Null, json!([])));
    assert_eq!(out["sys_created_at"], "2026-11-22T10:00:00.000000Z");
    assert_eq!(out["installment_schedule_reminder_options"], json!({"anything": [1, 2.5, {"kept": "as sent"}]}));
    assert_eq!(serde_json::from_value::<BillingRun>(out).unwrap(), run, "a run reads back unchanged");
}

#[test]
fn given_versions_and_locks_then_put_answers_409_or_applies() {
    let current = run();
    assert!(
        matches!(put(&current, json!({"sys_version": 3, "name": "x"}), false), Err(DomainError::Conflict(m)) if m.contains("sys_version"))
    );
    assert!(matches!(
        put(&current, json!({"sys_version": 1, "name": "Renamed"}), false),
        Ok(PutOutcome::Changed { .. })
    ));
    // Server-owned fields sent back are ignored: a round trip changes nothing.
    assert_eq!(
        put(&current, json!({"sys_created_by_id": "99", "statistics": [], "error": "x"}), false),
        Ok(PutOutcome::Unchanged)
    );
    // Only an admin changes the lock; anyone else's value is ignored.
    assert_eq!(put(&current, json!({"sys_locked": true}), false), Ok(PutOutcome::Unchanged));
    let Ok(PutOutcome::Changed { run: locked, fields }) = put(&current, json!({"sys_locked": true}), true) else {
        panic!()
    };
    assert!(locked.sys_locked);
    assert_eq!(fields, vec!["sys_locked".to_owned()]);
    // A locked run refuses every PUT, even one that changes nothing, but the admin's unlock.
    for admin in [false, true] {
        assert!(matches!(put(&locked, json!({}), admin), Err(DomainError::Conflict(m)) if m.contains("locked")));
        assert!(matches!(
            put(&locked, json!({"name": "x", "sys_locked": false}), false),
            Err(DomainError::Conflict(_))
        ));
    }
    let Ok(PutOutcome::Changed { run: unlocked, .. }) =
        put(&locked, json!({"sys_locked": false, "name": "Renamed"}), true)
    else {
        panic!()
    };
    assert!(!unlocked.sys_locked && unlocked.name == "Renamed", "an unlock may change other fields too");
    assert!(matches!(locked.check_delete(), Err(DomainError::Conflict(m)) if m.contains("locked")));
}

#[test]
fn given_each_status_then_content_changes_only_where_the_spec_allows() {
    for status in Status::VARIANTS {
        let outcome = put(&at(*status), json!({"status": status.name(), "name": "Renamed"}), false);
        match outcome {
            Ok(PutOutcome::Changed { run, fields }) => {
                assert!(status.content_editable(), "{status:?}");
                assert_eq!((run.name.as_str(), fields), ("Renamed", vec!["name".to_owned()]));
            }
            Err(DomainError::Conflict(_)) => assert!(!status.content_editable(), "{status:?}"),
            other => panic!("{status:?}: {other:?}"),
        }
        // An unchanged PUT is 200 in any status, even cancelled or completed.
        assert_eq!(put(&at(*status), json!({"status": status.name()}), false), Ok(PutOutcome::Unchanged), "{status:?}");
        assert_eq!(at(*status).check_delete().is_ok(), matches!(status, Draft | Cancelled), "{status:?}");
    }
}

#[test]
fn given_list_parameters_then_statuses_fields_and_recurring_ids_are_checked() {
    assert_eq!(parse_status_filter(None), Ok(None));
    assert_eq!(parse_status_filter(Some("draft")), Ok(Some(vec![Draft])));
    assert_eq!(parse_status_filter(Some("in:draft,scheduled")), Ok(Some(vec![Draft, Scheduled])));
    for bad in ["", "in:", "Draft", "in:draft,nope", "draft,"] {
        let refused = parse_status_filter(Some(bad)).expect_err(bad);
        assert!(matches!(&refused, DomainError::Invalid { errors, .. } if errors[0].pointer == "/status"), "{bad}");
    }
    assert_eq!(parse_fields(Some("name,status")), Ok(Some(vec!["name", "status"])));
    assert!(parse_fields(Some("name,secret")).is_err());
    assert_eq!(check_recurring_id(Some(&"r".repeat(100))), Ok(()));
    assert!(check_recurring_id(Some(&"r".repeat(101))).is_err());
    assert!(check_recurring_id(Some("")).is_err());
}

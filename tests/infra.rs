//! The SAM template declares exactly the route table's routes and functions, each built from its
//! own binary, and read functions get read-only table access.

use std::collections::BTreeSet;

use shared::routes::{EVENT_FUNCTIONS, ROUTES};
use yaml_rust2::{Yaml, YamlLoader};

fn template() -> Yaml {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("infra/template.yaml exists");
    YamlLoader::load_from_str(&text).expect("template is YAML").remove(0)
}

fn functions(template: &Yaml) -> Vec<(String, &Yaml)> {
    template["Resources"]
        .as_hash()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|r| (r["Metadata"]["BuildProperties"]["Binary"].as_str().expect("Binary").to_owned(), r))
        .collect()
}

#[test]
fn template_declares_exactly_the_route_table() {
    let template = template();
    let mut declared = BTreeSet::new();
    for (binary, resource) in functions(&template) {
        for event in resource["Properties"]["Events"].as_hash().into_iter().flat_map(|h| h.values()) {
            if event["Type"].as_str() == Some("HttpApi") {
                let props = &event["Properties"];
                declared.insert((
                    props["Method"].as_str().unwrap().to_owned(),
                    props["Path"].as_str().unwrap().to_owned(),
                    binary.clone(),
                ));
            }
        }
    }
    let expected: BTreeSet<_> =
        ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned(), r.function.to_owned())).collect();
    assert_eq!(declared, expected);
}

#[test]
fn every_function_is_a_cargo_lambda_build_of_its_own_binary() {
    let template = template();
    let mut names: Vec<String> = functions(&template)
        .into_iter()
        .map(|(name, resource)| {
            assert_eq!(resource["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{name}");
            let main = format!("{}/../functions/{name}/src/main.rs", env!("CARGO_MANIFEST_DIR"));
            assert!(std::path::Path::new(&main).exists(), "{name} has no functions/{name}");
            name
        })
        .collect();
    names.sort();
    let mut expected: Vec<String> =
        ROUTES.iter().map(|r| r.function).chain(EVENT_FUNCTIONS.iter().copied()).map(str::to_owned).collect();
    expected.sort();
    expected.dedup();
    assert_eq!(names, expected);
    assert_eq!(template["Globals"]["Function"]["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(template["Globals"]["Function"]["Architectures"][0].as_str(), Some("arm64"));
}

#[test]
fn read_functions_cannot_write_and_nothing_may_scan() {
    let template = template();
    let readers: BTreeSet<&str> = ROUTES.iter().filter(|r| r.method == "GET").map(|r| r.function).collect();
    for (name, resource) in functions(&template) {
        let mut actions = Vec::new();
        for policy in resource["Properties"]["Policies"].as_vec().expect("Policies") {
            for statement in policy["Statement"].as_vec().into_iter().flatten() {
                actions.extend(statement["Action"].as_vec().into_iter().flatten().filter_map(Yaml::as_str));
            }
        }
        assert!(!actions.is_empty(), "{name} has no table policy");
        assert!(!actions.iter().any(|a| a.contains("Scan") || a.ends_with('*')), "{name}: {actions:?}");
        if readers.contains(name.as_str()) {
            let reads = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"];
            assert!(actions.iter().all(|a| reads.contains(a)), "{name}: {actions:?}");
        }
    }
}

#[test]
fn api_key_routes_use_the_api_key_authorizer_and_the_others_the_token_one() {
    let template = template();
    let keyed: BTreeSet<&str> =
        ROUTES.iter().filter(|r| r.auth == shared::routes::Auth::ApiKey).map(|r| r.function).collect();
    assert!(!keyed.is_empty());
    let authorizers = &template["Resources"]["HttpApi"]["Properties"]["Auth"];
    assert_eq!(authorizers["DefaultAuthorizer"].as_str(), Some("BillflowAuthorizer"));
    assert_eq!(
        authorizers["Authorizers"]["BillflowApiKeyAuthorizer"]["Identity"]["Headers"][0].as_str(),
        Some("x-api-key")
    );
    // Both authorizers are billflow's own function, as payload 2.0 simple responses with caching.
    for name in ["BillflowAuthorizer", "BillflowApiKeyAuthorizer"] {
        let authorizer = &authorizers["Authorizers"][name];
        assert_eq!(authorizer["FunctionArn"].as_str(), Some("Authorizer.Arn"), "{name}");
        assert_eq!(authorizer["AuthorizerPayloadFormatVersion"].as_str(), Some("2.0"), "{name}");
        assert_eq!(authorizer["EnableSimpleResponses"].as_bool(), Some(true), "{name}");
        assert_eq!(authorizer["Identity"]["ReauthorizeEvery"].as_str(), Some("AuthorizerResultTtlInSeconds"), "{name}");
    }
    assert!(template["Parameters"]["AuthorizerFunctionArn"].is_badvalue(), "no outside authorizer is needed");
    for (name, resource) in functions(&template) {
        let Some(events) = resource["Properties"]["Events"].as_hash() else { continue };
        for event in events.values().filter(|e| e["Type"].as_str() == Some("HttpApi")) {
            let authorizer = event["Properties"]["Auth"]["Authorizer"].as_str();
            let want = if keyed.contains(name.as_str()) { Some("BillflowApiKeyAuthorizer") } else { None };
            assert_eq!(authorizer, want, "{name}");
        }
    }
}

#[test]
fn the_authorizer_reads_api_keys_only_and_its_secret_comes_from_secrets_manager() {
    let template = template();
    let authorizer = &template["Resources"]["Authorizer"];
    assert_eq!(authorizer["Metadata"]["BuildProperties"]["Binary"].as_str(), Some("authorizer"));
    let statements = authorizer["Properties"]["Policies"][0]["Statement"].as_vec().expect("a policy");
    assert_eq!(statements.len(), 1);
    let actions: Vec<&str> = statements[0]["Action"].as_vec().unwrap().iter().filter_map(Yaml::as_str).collect();
    assert_eq!(actions, vec!["dynamodb:GetItem"]);
    let keys = &statements[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
    assert_eq!(keys[0].as_str(), Some("APIKEY#*"), "only API key items");
    let env = &authorizer["Properties"]["Environment"]["Variables"];
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml")).unwrap();
    assert!(
        text.contains("{{resolve:secretsmanager:${JwtSecretArn}:SecretString}}"),
        "the HS256 secret is resolved from Secrets Manager"
    );
    for name in ["AUTH_JWKS_URL", "AUTH_ISSUER", "AUTH_AUDIENCE"] {
        assert!(!env[name].is_badvalue(), "{name} comes from a parameter");
    }
    assert_eq!(template["Parameters"]["JwtSecretArn"]["Default"].as_str(), Some(""), "no secret in the template");
}

#[test]
fn the_worker_is_triggered_by_exactly_the_kinds_its_jobs_step() {
    let template = template();
    let pattern = template["Resources"]["BillRunWorker"]["Properties"]["Events"]["Stream"]["Properties"]
        ["FilterCriteria"]["Filters"][0]["Pattern"]
        .as_str()
        .expect("a stream filter");
    let pattern: serde_json::Value = serde_json::from_str(pattern).expect("the filter is JSON");
    let entities: BTreeSet<&str> = pattern["dynamodb"]["NewImage"]["entity"]["S"]
        .as_array()
        .expect("entities")
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    let kinds: BTreeSet<&str> = shared::worker::jobs().iter().map(|job| job.kind().name).collect();
    assert_eq!(entities, kinds);
    let sender = template["Resources"]["WebhookSender"]["Properties"]["Events"]["Stream"]["Properties"]
        ["FilterCriteria"]["Filters"][0]["Pattern"]
        .as_str()
        .expect("the sender's stream filter");
    let sender: serde_json::Value = serde_json::from_str(sender).expect("the filter is JSON");
    let kinds: Vec<&str> = shared::events::sender::jobs().iter().map(|job| job.kind().name).collect();
    assert_eq!(sender["dynamodb"]["NewImage"]["entity"]["S"], serde_json::json!(kinds));
    let publisher = template["Resources"]["EventPublisher"]["Properties"]["Events"]["Stream"]["Properties"]
        ["FilterCriteria"]["Filters"][0]["Pattern"]
        .as_str()
        .expect("the publisher's stream filter");
    let publisher: serde_json::Value = serde_json::from_str(publisher).expect("the filter is JSON");
    assert_eq!(publisher["dynamodb"]["NewImage"]["eventType"]["S"][0]["exists"], true);
}

#[test]
fn the_stack_has_a_bus_and_no_function_may_send_webhooks_to_loopback() {
    let template = template();
    assert_eq!(template["Resources"]["EventBus"]["Type"].as_str(), Some("AWS::Events::EventBus"));
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml")).unwrap();
    for local in ["WEBHOOK_ALLOW_LOOPBACK", "WEBHOOK_RETRY_SCHEDULE"] {
        assert!(!text.contains(local), "{local} is a local setting, never the stack's");
    }
}

/// The sweeps run every minute: the sweeper and the webhook-sender on EventBridge rules, the
/// billing-run scheduler on an EventBridge Scheduler schedule; the scheduler may read and write
/// the table (through its indexes, never a Scan) and nothing else.
#[test]
fn the_sweeps_and_the_billing_run_scheduler_run_every_minute() {
    let template = template();
    let resources = &template["Resources"];
    for name in ["Sweeper", "WebhookSender"] {
        let events = resources[name]["Properties"]["Events"].as_hash().expect("events");
        let schedule = events.values().find(|e| e["Type"].as_str() == Some("Schedule")).expect("a schedule");
        assert_eq!(schedule["Properties"]["Schedule"].as_str(), Some("rate(1 minute)"), "{name}");
    }
    let scheduler = &resources["BillingRunScheduler"]["Properties"];
    let tick = &scheduler["Events"]["EveryMinute"];
    assert_eq!(tick["Type"].as_str(), Some("ScheduleV2"));
    assert_eq!(tick["Properties"]["ScheduleExpression"].as_str(), Some("rate(1 minute)"));
    let actions: Vec<String> = scheduler["Policies"]
        .as_vec()
        .expect("policies")
        .iter()
        .flat_map(|p| p["Statement"].as_vec().cloned().unwrap_or_default())
        .flat_map(|s| s["Action"].as_vec().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    assert!(!actions.is_empty() && actions.iter().all(|a| a.starts_with("dynamodb:")), "{actions:?}");
    assert!(!actions.iter().any(|a| a == "dynamodb:Scan"), "{actions:?}");
}

//! What every Lambda `main` shares: tracing set-up and dependencies built once per process.

use std::sync::Arc;

use crate::http::Deps;
use crate::store::dynamo::DynamoStore;
use crate::store::SharedRepository;

pub type Error = lambda_http::Error;

/// JSON logs when Lambda asks for them (`AWS_LAMBDA_LOG_FORMAT=JSON`), plain text otherwise; the
/// level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default info).
pub fn init_tracing() {
    let builder = tracing_subscriber::fmt().with_max_level(log_level()).with_target(false).without_time();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        builder.json().with_current_span(false).init();
    } else {
        builder.with_ansi(false).init();
    }
}

/// The log level from `AWS_LAMBDA_LOG_LEVEL` (TRACE, DEBUG, INFO, WARN, ERROR, FATAL) or
/// `RUST_LOG` (a level), info by default. A level filter rather than `EnvFilter`'s directives:
/// that keeps a regex engine out of every function.
pub fn log_level() -> tracing_subscriber::filter::LevelFilter {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_default();
    match level.to_ascii_lowercase().as_str() {
        "fatal" => tracing_subscriber::filter::LevelFilter::ERROR,
        other => other.parse().unwrap_or(tracing_subscriber::filter::LevelFilter::INFO),
    }
}

/// The table from `TABLE_NAME` and a DynamoDB client from the function's environment
/// ([`DynamoStore::for_lambda`]).
pub fn store_from_env() -> Result<SharedRepository, Error> {
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    Ok(Arc::new(DynamoStore::for_lambda(table)))
}

/// An HTTP function's dependencies: [`store_from_env`].
pub fn deps_from_env() -> Result<Deps, Error> {
    Ok(Deps::new(store_from_env()?))
}

/// Runs an HTTP handler as a Lambda function.
pub async fn serve_http<'a, F, Fut>(deps: &'a Deps, handler: F) -> Result<(), Error>
where
    F: Fn(&'a Deps, lambda_http::Request) -> Fut,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send + 'a,
{
    lambda_http::run(lambda_http::service_fn(|req| {
        let response = handler(deps, req);
        async move { Ok::<_, std::convert::Infallible>(response.await) }
    }))
    .await
}

/// Runs the worker as a Lambda function on the table's stream, with partial-batch responses.
pub async fn serve_stream() -> Result<(), Error> {
    use aws_lambda_events::dynamodb::Event;
    use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
    let worker = &crate::worker::Worker::standard(store_from_env()?);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| async move {
        Ok::<_, std::convert::Infallible>(worker.handle_stream(event.payload).await)
    }))
    .await
}

/// Runs the `event-publisher` function on the table's stream (filtered to published events): each
/// event put on the bus `EVENT_BUS_NAME` and its deliveries made, with partial-batch responses.
pub async fn serve_event_publisher() -> Result<(), Error> {
    use aws_lambda_events::dynamodb::Event;
    use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
    let bus = std::env::var("EVENT_BUS_NAME").map_err(|_| "EVENT_BUS_NAME is not set")?;
    let bus = Arc::new(crate::events::eventbridge::EventBridge::for_lambda(bus));
    let publisher = &crate::events::Publisher::new(store_from_env()?, bus);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| async move {
        Ok::<_, std::convert::Infallible>(publisher.handle_stream(event.payload).await)
    }))
    .await
}

/// Runs the `webhook-sender` function: on the table's stream (deliveries with pending work) it
/// steps each delivery, with partial-batch responses; on its schedule (any other event) it
/// sweeps the deliveries whose lease passed (their retries come due so) and logs the sweep as
/// embedded metrics (`DeliveriesPastLease`, `DeliveriesRedriven`, `DeliveriesFailed`,
/// `DeliveriesOldestLeaseAge`).
pub async fn serve_webhook_sender() -> Result<(), Error> {
    use aws_lambda_events::dynamodb::Event;
    use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
    let worker = &crate::worker::Worker::new(store_from_env()?, crate::events::sender::jobs());
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        if event.payload.get("Records").is_some() {
            let records: Event = serde_json::from_value(event.payload)?;
            return Ok::<_, Error>(serde_json::to_value(worker.handle_stream(records).await)?);
        }
        let now = crate::store::now_ms();
        let sweep = worker.sweep(now, Some(event.context.deadline)).await?;
        println!("{}", sweep.emf(now, "Deliveries"));
        Ok(serde_json::json!({"overdue": sweep.overdue, "redriven": sweep.redriven, "failed": sweep.failed}))
    }))
    .await
}

/// Runs the `sweeper` function on its schedule (any event starts a sweep): re-drives work past its
/// lease and logs what it found as embedded metrics (`WorkPastLease`, `WorkRedriven`,
/// `WorkFailed`, `WorkOldestLeaseAge`, namespace `billflow`), which the template's alarm on stuck work
/// reads.
pub async fn serve_sweeper() -> Result<(), Error> {
    use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
    let worker = &crate::worker::Worker::standard(store_from_env()?);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        let now = crate::store::now_ms();
        let sweep = worker.sweep(now, Some(event.context.deadline)).await?;
        println!("{}", sweep.emf(now, "Work"));
        Ok::<_, Error>(serde_json::json!({"overdue": sweep.overdue, "redriven": sweep.redriven, "idle": sweep.idle,
            "failed": sweep.failed, "oldestLeaseAgeMs": sweep.oldest_lease_age_ms}))
    }))
    .await
}

/// Runs the `billing-run-scheduler` function on its schedule (any event starts a tick): every
/// billing run whose date has come, or whose lease passed while it was busy, found through the
/// work index and stepped ([`crate::worker::Worker::schedule`]); the tick is logged as embedded
/// metrics (`BillingRunsPastLease`, `BillingRunsRedriven`, `BillingRunsFailed`,
/// `BillingRunsOldestLeaseAge`).
pub async fn serve_billing_run_scheduler() -> Result<(), Error> {
    use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
    let worker = &crate::worker::Worker::new(store_from_env()?, crate::worker::billing_runs::jobs());
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        let now = crate::store::now_ms();
        let tick = worker.schedule(now, Some(event.context.deadline)).await?;
        println!("{}", tick.emf(now, "BillingRuns"));
        Ok::<_, Error>(
            serde_json::json!({"due": tick.overdue, "moved": tick.redriven, "idle": tick.idle, "failed": tick.failed}),
        )
    }))
    .await
}

/// Runs the `authorizer` function: one [`crate::auth::Verifier`] per process, built without any
/// I/O (no JWKS fetch, table read or TLS set-up until a request needs it). Each request is
/// answered in its own task, so that even a panic denies.
pub async fn serve_authorizer() -> Result<(), Error> {
    use std::sync::Arc;

    use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};

    use crate::auth::{authorize_event, deny, AuthConfig, AuthorizerRequest, Verifier};
    let verifier = Arc::new(Verifier::new(AuthConfig::from_env(), store_from_env()?));
    lambda_runtime::run(service_fn(|event: LambdaEvent<AuthorizerRequest>| {
        let verifier = verifier.clone();
        async move {
            let answer = tokio::spawn(async move { authorize_event(&verifier, &event.payload).await }).await;
            Ok::<_, std::convert::Infallible>(answer.unwrap_or_else(|panic| {
                tracing::error!(%panic, "the authorizer panicked; denied");
                deny()
            }))
        }
    }))
    .await
}

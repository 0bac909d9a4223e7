//! The EventBridge bus of the stack: every published event, `source` `billflow`, `detail-type`
//! its type, `detail` the event, `resources` its resource's href. The client is built as the
//! DynamoDB store's is (the function's environment, the same small trust store and time bounds).

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use serde_json::Value;

use super::Bus;

/// EventBridge's limit on one entry (256 KB): a larger event is put without its `data`, with
/// `data.truncated: true` (its full form is `GET /events/{id}`).
const MAX_ENTRY_BYTES: usize = 250 * 1024;
/// Entries one PutEvents takes.
const BATCH: usize = 10;

pub struct EventBridge {
    client: Client,
    bus: String,
}

impl EventBridge {
    /// The bus `EVENT_BUS_NAME`, with a client from the function's environment.
    pub fn for_lambda(bus: impl Into<String>) -> Self {
        use aws_sdk_eventbridge::config::{BehaviorVersion, Region};
        let env = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        let mut config = aws_sdk_eventbridge::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).map(Region::new))
            .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
            .timeout_config(crate::store::dynamo::timeouts())
            .http_client(crate::store::dynamo::http_client(false));
        config.set_endpoint_url(env("AWS_ENDPOINT_URL_EVENTBRIDGE"));
        Self { client: Client::from_conf(config.build()), bus: bus.into() }
    }
}

/// The entry of one event.
fn entry(bus: &str, event: &Value) -> PutEventsRequestEntry {
    let mut detail = event.to_string();
    if detail.len() > MAX_ENTRY_BYTES {
        let mut trimmed = event.clone();
        trimmed["data"] = serde_json::json!({"truncated": true});
        detail = trimmed.to_string();
    }
    PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source("billflow")
        .detail_type(event["type"].as_str().unwrap_or_default())
        .detail(detail)
        .resources(event["resource"]["href"].as_str().unwrap_or_default())
        .build()
}

#[async_trait]
impl Bus for EventBridge {
    async fn put(&self, events: &[Value]) -> Vec<usize> {
        let mut failed = Vec::new();
        for (chunk_at, chunk) in events.chunks(BATCH).enumerate() {
            let first = chunk_at * BATCH;
            let entries = chunk.iter().map(|e| entry(&self.bus, e)).collect();
            match self.client.put_events().set_entries(Some(entries)).send().await {
                Ok(out) => failed.extend(
                    out.entries().iter().enumerate().filter(|(_, e)| e.error_code().is_some()).map(|(i, _)| first + i),
                ),
                Err(error) => {
                    tracing::warn!(error = %aws_sdk_eventbridge::error::DisplayErrorContext(&error), "PutEvents failed");
                    failed.extend(first..first + chunk.len());
                }
            }
        }
        failed
    }
}

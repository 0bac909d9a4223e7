//! The EventBridge bus of the stack: every published event, `source` `billflow`, `detail-type`
//! its type, `detail` the event, `resources` its resource's href. The client is built as the
//! DynamoDB store's is (the function's environment, the same small trust store and time bounds).

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use serde_json::Value;

use super::Bus;

/// EventBridge's limit on one request's entries (256 KB): a larger event is put without its `data`, with
/// `data.truncated: true` (its full form is `GET /events/{id}`).
const MAX_ENTRY_BYTES: usize = 240 * 1024;
/// Entries one PutEvents takes.
const BATCH: usize = 10;
/// What one PutEvents may carry in all (256 KB, with room for each entry's other fields).
const MAX_REQUEST_BYTES: usize = 250 * 1024;

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

/// Consecutive runs of `sizes` (by index) of at most [`BATCH`] entries and [`MAX_REQUEST_BYTES`]
/// in all: one PutEvents each.
fn batches(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, size) in sizes.iter().enumerate() {
        if i > start && (i - start == BATCH || bytes + size > MAX_REQUEST_BYTES) {
            batches.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        batches.push(start..sizes.len());
    }
    batches
}

#[async_trait]
impl Bus for EventBridge {
    async fn put(&self, events: &[Value]) -> Vec<usize> {
        let entries: Vec<PutEventsRequestEntry> = events.iter().map(|e| entry(&self.bus, e)).collect();
        let sizes: Vec<usize> = entries.iter().map(|e| e.detail().map_or(0, str::len) + 200).collect();
        let mut failed = Vec::new();
        for range in batches(&sizes) {
            let chunk = entries[range.clone()].to_vec();
            match self.client.put_events().set_entries(Some(chunk)).send().await {
                Ok(out) => failed.extend(
                    out.entries()
                        .iter()
                        .enumerate()
                        .filter(|(_, e)| e.error_code().is_some())
                        .map(|(i, _)| range.start + i),
                ),
                Err(error) => {
                    tracing::warn!(error = %aws_sdk_eventbridge::error::DisplayErrorContext(&error), "PutEvents failed");
                    failed.extend(range);
                }
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn batches_keep_within_ten_entries_and_the_request_limit() {
        assert_eq!(super::batches(&[10; 25]), vec![0..10, 10..20, 20..25]);
        let big = 200 * 1024;
        assert_eq!(super::batches(&[big, big, 10, big]), vec![0..1, 1..3, 3..4]);
        assert!(super::batches(&[]).is_empty());
    }
}

//! `billflow-admin api-key create | list | revoke`: API keys in the table the functions read
//! (`TABLE_NAME`; DynamoDB through the standard AWS environment, or DynamoDB Local through
//! `AWS_ENDPOINT_URL_DYNAMODB`). A new key is printed once; only its SHA-256 hash is stored.

use std::process::ExitCode;
use std::time::Duration;

use shared::auth::{api_key_record, new_api_key};
use shared::domain::identity::Principal;
use shared::store::dynamo::DynamoStore;
use shared::store::{now_epoch, Repository};

const USAGE: &str = "usage:
  billflow-admin api-key create --user-id N --tenants a,b --scopes billing:read,billing:write [--expires-in 90d] [--description TEXT]
  billflow-admin api-key list
  billflow-admin api-key revoke KEY_ID
environment: TABLE_NAME (the table must exist), the standard AWS variables, AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

/// `90d`, `12h`, `30m` or `45s`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("--expires-in takes <n>s, <n>m, <n>h or <n>d, not {text:?}");
    let (n, unit) = text.split_at(text.len().checked_sub(1).ok_or_else(bad)?);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    };
    seconds.filter(|s| *s > 0).map(Duration::from_secs).ok_or_else(bad)
}

fn list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

async fn store() -> Result<DynamoStore, String> {
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set: name the billflow table".to_owned())?;
    let store = DynamoStore::from_env(table.clone()).await;
    match store.client().describe_table().table_name(&table).send().await {
        Ok(_) => Ok(store),
        Err(e) => {
            use aws_sdk_dynamodb::error::ProvideErrorMetadata;
            let why = e.code().map_or_else(|| e.to_string(), str::to_owned);
            Err(format!("the table {table:?} cannot be used ({why}); deploy the stack (or start the dev server) first"))
        }
    }
}

async fn run(args: &[String]) -> Result<(), String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["api-key", "create", options @ ..] => {
            let mut user_id = None;
            let (mut tenants, mut scopes, mut expires, mut description) = (Vec::new(), Vec::new(), None, None);
            let mut rest = options.iter();
            while let Some(option) = rest.next() {
                let mut value = || rest.next().copied().ok_or_else(|| format!("{option} needs a value\n{USAGE}"));
                match *option {
                    "--user-id" => {
                        user_id = Some(value()?.parse::<u64>().map_err(|_| "--user-id takes an integer".to_owned())?)
                    }
                    "--tenants" => tenants = list(value()?),
                    "--scopes" => scopes = list(value()?),
                    "--expires-in" => expires = Some(parse_duration(value()?)?),
                    "--description" => description = Some(value()?.to_owned()),
                    other => return Err(format!("unknown option {other}\n{USAGE}")),
                }
            }
            let user_id = user_id.ok_or_else(|| format!("--user-id is required\n{USAGE}"))?;
            if scopes.is_empty() {
                return Err(format!("--scopes is required\n{USAGE}"));
            }
            let caller = Principal { user_id, tenants, scopes };
            let (key_id, key) = new_api_key();
            let record = api_key_record(&key, &key_id, caller, description, expires);
            store().await?.put_api_key(&record).await.map_err(|e| format!("cannot store the key: {e}"))?;
            println!("key_id: {key_id}");
            println!("api_key: {key}");
            Ok(())
        }
        ["api-key", "list"] => {
            let keys = store().await?.api_keys().await.map_err(|e| format!("cannot list the keys: {e}"))?;
            let now = now_epoch();
            println!("key_id\tuser\ttenants\tscopes\tcreated\texpires\tstate\tdescription");
            for key in keys {
                let date = |at: Option<i64>| {
                    at.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                        .map_or_else(|| "-".to_owned(), |t| t.date().to_string())
                };
                let state = match (key.revoked_at, key.valid_at(now)) {
                    (Some(_), _) => "revoked",
                    (None, false) => "expired",
                    (None, true) => "active",
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{state}\t{}",
                    key.key_id,
                    key.caller.user_id,
                    key.caller.tenants.join(","),
                    key.caller.scopes.join(","),
                    date(Some(key.created_at)),
                    date(key.expires_at),
                    key.description.unwrap_or_default()
                );
            }
            Ok(())
        }
        ["api-key", "revoke", key_id] => {
            let revoked = store().await?.revoke_api_key(key_id, now_epoch()).await.map_err(|e| e.to_string())?;
            if revoked {
                println!("revoked {key_id}");
                Ok(())
            } else {
                Err(format!("no API key {key_id}"))
            }
        }
        _ => Err(USAGE.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_minutes_hours_and_days() {
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        for bad in ["", "d", "0d", "5w", "-1d", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

//! `billflow-admin api-key create | list | revoke`: API keys in the table the functions read
//! (`TABLE_NAME`; DynamoDB through the standard AWS environment, or DynamoDB Local through
//! `AWS_ENDPOINT_URL_DYNAMODB`, with the region and credentials filled in as the dev server does).
//! A new key is printed once; only its SHA-256 hash is stored. `table create` makes the table on
//! DynamoDB Local (in AWS the stack owns it). Each failure says what is wrong: no table name, no
//! table, no region, no credentials, or an endpoint that does not answer.

use std::process::ExitCode;

use shared::api_keys::{parse_duration, KeyView, NewKey};
use shared::domain::identity::Principal;
use shared::store::dynamo::DynamoStore;
use shared::store::{now_epoch, Repository};

const USAGE: &str = "usage:
  billflow-admin api-key create --user-id N --tenants a,b --scopes billing:read,billing:write [--expires-in 90d] [--description TEXT]
  billflow-admin api-key list
  billflow-admin api-key revoke KEY_ID
  billflow-admin table create          (DynamoDB Local only: makes the table as the stack declares it)
environment: TABLE_NAME (default billflow), the standard AWS variables, or AWS_ENDPOINT_URL_DYNAMODB for
DynamoDB Local (then any region and credentials do, and they are filled in when unset)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let endpoint = shared::store::dynamo::local_endpoint_defaults();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args, endpoint.as_deref())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The table `TABLE_NAME` names (`billflow` by default), once it is known to be there and usable.
async fn store(endpoint: Option<&str>) -> Result<DynamoStore, String> {
    use aws_sdk_dynamodb::config::ProvideCredentials;
    use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
    let table = shared::store::dynamo::tool_table_name();
    let config = DynamoStore::env_config().await;
    let Some(region) = config.region().map(ToString::to_string) else {
        return Err("no AWS region: set AWS_REGION (or AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local)".into());
    };
    let place = endpoint.map_or_else(|| format!("DynamoDB in {region}"), |e| format!("DynamoDB Local at {e}"));
    let credentials = match config.credentials_provider() {
        Some(provider) => provider.provide_credentials().await.map(|_| ()).map_err(|e| e.to_string()),
        None => Err("none is configured".into()),
    };
    if let Err(why) = credentials {
        return Err(format!(
            "no AWS credentials for {place} ({why}): set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ));
    }
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table.clone());
    match store.client().describe_table().table_name(&table).send().await {
        Ok(_) => Ok(store),
        Err(e) if e.code() == Some("ResourceNotFoundException") => Err(match endpoint {
            Some(_) => format!("there is no table {table:?} in {place}: create it with `billflow-admin table create`"),
            None => format!("there is no table {table:?} in {place}: deploy the stack, or set TABLE_NAME to its table"),
        }),
        Err(e @ (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_))) => {
            Err(format!("{place} does not answer: is it running? ({})", DisplayErrorContext(e)))
        }
        Err(e) => Err(format!("{place} refused to describe the table {table:?}: {}", DisplayErrorContext(e))),
    }
}

async fn run(args: &[String], endpoint: Option<&str>) -> Result<(), String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["table", "create"] => create_table(endpoint).await,
        ["api-key", "create", options @ ..] => {
            let issued = new_key(options)?.issue().map_err(|e| format!("cannot make the key: {e}"))?;
            let store = store(endpoint).await?;
            store.put_api_key(&issued.record).await.map_err(|e| format!("cannot store the key: {e}"))?;
            println!("key_id: {}", issued.record.key_id);
            println!("api_key: {}", issued.key);
            Ok(())
        }
        ["api-key", "list"] => list_keys(&store(endpoint).await?).await,
        ["api-key", "revoke", key_id] => {
            let store = store(endpoint).await?;
            let key = store.api_key_by_id(key_id).await.map_err(|e| e.to_string())?;
            let key = key.ok_or_else(|| format!("no API key {key_id}"))?;
            store.revoke_api_key(&key, now_epoch()).await.map_err(|e| e.to_string())?;
            println!("revoked {key_id}");
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    }
}

async fn create_table(endpoint: Option<&str>) -> Result<(), String> {
    if endpoint.is_none() {
        return Err(
            "table create is for DynamoDB Local (set AWS_ENDPOINT_URL_DYNAMODB); in AWS the stack owns the table"
                .into(),
        );
    }
    let table = shared::store::dynamo::tool_table_name();
    let store = DynamoStore::from_env(table.clone()).await;
    store.create_table_if_missing().await.map_err(|e| format!("cannot create the table {table:?}: {e}"))?;
    println!("table {table} is ready");
    Ok(())
}

/// The key `api-key create`'s options ask for.
fn new_key(options: &[&str]) -> Result<NewKey, String> {
    let mut user_id = None;
    let (mut tenants, mut scopes, mut expires_in, mut description) = (Vec::new(), Vec::new(), None, None);
    let mut rest = options.iter();
    while let Some(option) = rest.next() {
        let mut value = || rest.next().copied().ok_or_else(|| format!("{option} needs a value\n{USAGE}"));
        match *option {
            "--user-id" => {
                user_id = Some(value()?.parse::<u64>().map_err(|_| "--user-id takes an integer".to_owned())?)
            }
            "--tenants" => tenants = list(value()?),
            "--scopes" => scopes = list(value()?),
            "--expires-in" => {
                let text = value()?;
                expires_in = Some(parse_duration(text).ok_or_else(|| {
                    format!("--expires-in takes <n>s, <n>m, <n>h or <n>d (at most 3650d), not {text:?}")
                })?)
            }
            "--description" => description = Some(value()?.to_owned()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let user_id = user_id.ok_or_else(|| format!("--user-id is required\n{USAGE}"))?;
    if scopes.is_empty() {
        return Err(format!("--scopes is required\n{USAGE}"));
    }
    if tenants.is_empty() {
        return Err(format!("--tenants is required: a key acts in its tenants only\n{USAGE}"));
    }
    Ok(NewKey { caller: Principal { user_id, tenants, scopes }, description, expires_in })
}

async fn list_keys(store: &DynamoStore) -> Result<(), String> {
    let keys = store.api_keys().await.map_err(|e| format!("cannot list the keys: {e}"))?;
    let now = now_epoch();
    println!("key_id\tuser\ttenants\tscopes\tcreated\texpires\tstate\tdescription");
    let date = |at: Option<String>| at.map_or_else(|| "-".to_owned(), |t| t.chars().take(10).collect());
    for key in keys {
        let view = KeyView::of(&key, now);
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            view.key_id,
            view.user_id,
            view.tenants.join(","),
            view.scopes.join(","),
            date(Some(view.created)),
            date(view.expires),
            view.state,
            view.description.unwrap_or_default()
        );
    }
    Ok(())
}

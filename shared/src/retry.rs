//! The one retry loop for writes that may lose a race, used by every handler and the worker.
//! A lost race is told from a refusal by type ([`LostRace`]), never by a message.

use std::time::Duration;

/// How many times a write that lost a race is re-read and re-applied before giving up.
pub const ATTEMPTS: u32 = 8;

/// An error that may mean "a concurrent write got there first: read again and retry".
pub trait LostRace {
    fn is_lost_race(&self) -> bool;
    /// The error to report when every attempt lost.
    fn lost_race() -> Self;
}

impl LostRace for crate::store::StoreError {
    fn is_lost_race(&self) -> bool {
        matches!(self, Self::Conflict)
    }

    fn lost_race() -> Self {
        Self::Conflict
    }
}

/// A short, jittered pause before attempt `n` (none before the first), so that writers who lost
/// a race do not collide again in lockstep.
pub async fn backoff(attempt: u32) {
    if attempt > 0 {
        let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 8;
        tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 2 + jitter)).await;
    }
}

/// Runs `attempt` (read, decide, conditional write) until it does not lose a race, at most
/// [`ATTEMPTS`] times with [`backoff`] between; then the lost race is the answer. An attempt
/// captures references (`move || async move { .. }`); what it keeps between attempts (reserved
/// ids) lives in a `tokio::sync::OnceCell` outside.
pub async fn with_retries<T, E, F, Fut>(mut attempt: F) -> Result<T, E>
where
    E: LostRace,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    for n in 0..ATTEMPTS {
        backoff(n).await;
        match attempt().await {
            Err(e) if e.is_lost_race() => continue,
            other => return other,
        }
    }
    Err(E::lost_race())
}

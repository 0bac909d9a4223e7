//! The one retry loop for writes that may lose a race, used by every handler and the worker.
//! A lost race is told from a refusal by type ([`LostRace`]), never by a message.

use std::time::Duration;

/// How many times a write that lost a race is re-read and re-applied before giving up.
pub const ATTEMPTS: u32 = 10;
/// The first pause, doubled before each attempt after it up to [`MAX_PAUSE_MS`]: the pauses
/// before the ten attempts add up to at most 1.8 s, long enough for a hot item (a tenant's
/// counter, a run every step writes) to clear, and within every function's time.
pub const FIRST_PAUSE_MS: u64 = 10;
pub const MAX_PAUSE_MS: u64 = 400;

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

/// The longest pause before attempt `n` (none before the first): exponential, capped.
pub fn pause_cap_ms(attempt: u32) -> u64 {
    if attempt == 0 {
        return 0;
    }
    FIRST_PAUSE_MS.saturating_mul(1u64 << (attempt - 1).min(16)).min(MAX_PAUSE_MS)
}

/// A jittered pause before attempt `n`: a random share between half and all of its cap, so that
/// writers who lost a race do not collide again in lockstep.
pub async fn backoff(attempt: u32) {
    let cap = pause_cap_ms(attempt);
    if cap > 0 {
        let bytes = *uuid::Uuid::new_v4().as_bytes();
        let random = u64::from(u16::from_le_bytes([bytes[0], bytes[1]]));
        tokio::time::sleep(Duration::from_millis(cap / 2 + random % (cap / 2 + 1))).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_from_10_ms_to_a_cap_and_stay_within_two_seconds_in_all() {
        let caps: Vec<u64> = (0..ATTEMPTS).map(pause_cap_ms).collect();
        assert_eq!(caps, vec![0, 10, 20, 40, 80, 160, 320, 400, 400, 400]);
        assert!(caps.iter().sum::<u64>() <= 2_000);
        assert_eq!(pause_cap_ms(u32::MAX), MAX_PAUSE_MS, "no overflow on any attempt number");
    }
}

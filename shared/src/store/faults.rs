//! Faults on purpose: the embedded store's test mode ([`super::memory::MemoryStore::with_faults`])
//! fails a seeded share of its writes the ways DynamoDB's fail, so that what a throttle, a lost
//! race or a timeout does to a run or an on-demand bill can be seen and tested
//! (`STORE_FAULTS=<share>` and `STORE_FAULTS_SEED=<n>` on the dev server; refused with DynamoDB).
//! Reads are never faulted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::StoreError;

/// How an injected fault shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A conditional write lost to a concurrent change (nothing written).
    LostRace,
    /// The store throttles (nothing written).
    Throttle,
    /// The call timed out before the store committed (nothing written).
    TimeoutBefore,
    /// The call timed out after the store committed: written, but the caller is told it failed.
    TimeoutAfter,
    /// The worker's step dies at its write (a bug, or a process killed): it panics before the
    /// store commits, or after. A client's write gets [`Fault::TimeoutBefore`] or
    /// [`Fault::TimeoutAfter`] instead (a request handler is never killed mid-answer here).
    PanicBefore,
    PanicAfter,
}

impl Fault {
    /// What the caller is told.
    pub fn error(self) -> StoreError {
        match self {
            Self::LostRace => StoreError::Conflict,
            Self::Throttle => StoreError::Throttled("injected fault: throttled".into()),
            Self::TimeoutBefore | Self::TimeoutAfter | Self::PanicBefore | Self::PanicAfter => {
                StoreError::Unavailable("injected fault: timed out".into())
            }
        }
    }
}

/// Which writes fail: each with probability `share`, as one of the six [`Fault`]s, drawn from a
/// seeded generator, so that a seed replays the same faults for the same sequence of writes.
#[derive(Debug)]
pub struct Faults {
    share: f64,
    state: Mutex<u64>,
    injected: AtomicU64,
}

impl Faults {
    pub fn new(share: f64, seed: u64) -> Self {
        Self { share: share.clamp(0.0, 1.0), state: Mutex::new(seed), injected: AtomicU64::new(0) }
    }

    /// How many faults it has injected.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// The next write's fault, if it gets one (splitmix64: small, seeded, good enough to pick).
    pub fn roll(&self) -> Option<Fault> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = || {
            *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        // The top 53 bits as a fraction in [0, 1).
        let draw = (next() >> 11) as f64 / (1u64 << 53) as f64;
        if draw >= self.share {
            return None;
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        Some(match next() % 6 {
            0 => Fault::LostRace,
            1 => Fault::Throttle,
            2 => Fault::TimeoutBefore,
            3 => Fault::TimeoutAfter,
            4 => Fault::PanicBefore,
            _ => Fault::PanicAfter,
        })
    }
}

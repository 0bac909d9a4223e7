//! Faults on purpose: a store around the embedded one whose writes fail, a seeded share of them,
//! the ways DynamoDB's do, so that what a throttle, a lost race or a timeout does to a run or an
//! on-demand bill can be seen and tested (`STORE_FAULTS=<share>` and `STORE_FAULTS_SEED=<n>` on
//! the dev server; refused with DynamoDB). Reads are passed through.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    ApiKeyRecord, AuditEvent, Change, Delete, Guard, IdempotencyRecord, Page, Repository, SharedRepository, StoreError,
    StoreResult, Stored, Write,
};
use crate::domain::key::{Key, Kind, TenantId};

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
}

/// The embedded store with faults: each write fails with probability `share`, as one of the
/// four [`Fault`]s in turn of a seeded generator, so that a seed replays the same faults for the
/// same sequence of writes.
pub struct Faulty {
    inner: SharedRepository,
    share: f64,
    state: Mutex<u64>,
    injected: AtomicU64,
}

impl Faulty {
    pub fn new(inner: SharedRepository, share: f64, seed: u64) -> Self {
        Self { inner, share: share.clamp(0.0, 1.0), state: Mutex::new(seed), injected: AtomicU64::new(0) }
    }

    /// How many faults it has injected.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// The next fault, if this write gets one (splitmix64: small, seeded, good enough to pick).
    fn roll(&self) -> Option<Fault> {
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
        Some(match next() % 4 {
            0 => Fault::LostRace,
            1 => Fault::Throttle,
            2 => Fault::TimeoutBefore,
            _ => Fault::TimeoutAfter,
        })
    }
}

fn error(fault: Fault) -> StoreError {
    match fault {
        Fault::LostRace => StoreError::Conflict,
        Fault::Throttle => StoreError::Throttled("injected fault: throttled".into()),
        Fault::TimeoutBefore | Fault::TimeoutAfter => StoreError::Unavailable("injected fault: timed out".into()),
    }
}

#[async_trait]
impl Repository for Faulty {
    async fn next_ids(&self, tenant: &TenantId, counter: &str, n: u64) -> StoreResult<u64> {
        self.inner.next_ids(tenant, counter, n).await
    }
    async fn get(&self, key: &Key) -> StoreResult<Option<Stored>> {
        self.inner.get(key).await
    }
    async fn write(&self, writes: Vec<Write>) -> StoreResult<Vec<Stored>> {
        match self.roll() {
            None => self.inner.write(writes).await,
            Some(Fault::TimeoutAfter) => {
                self.inner.write(writes).await?;
                Err(error(Fault::TimeoutAfter))
            }
            Some(fault) => Err(error(fault)),
        }
    }
    async fn delete(&self, delete: Delete) -> StoreResult<()> {
        match self.roll() {
            None => self.inner.delete(delete).await,
            Some(Fault::TimeoutAfter) => {
                self.inner.delete(delete).await?;
                Err(error(Fault::TimeoutAfter))
            }
            Some(fault) => Err(error(fault)),
        }
    }
    fn items_read(&self) -> u64 {
        self.inner.items_read()
    }
    async fn count(&self, kind: Kind, tenant: &TenantId) -> StoreResult<u64> {
        self.inner.count(kind, tenant).await
    }
    async fn group(&self, kind: Kind, tenant: &TenantId, group: &str) -> StoreResult<Vec<Stored>> {
        self.inner.group(kind, tenant, group).await
    }
    async fn page(&self, kind: Kind, tenant: &TenantId, index: &Page<'_>) -> StoreResult<Vec<Stored>> {
        self.inner.page(kind, tenant, index).await
    }
    async fn group_count(&self, kind: Kind, tenant: &TenantId, group: &str) -> StoreResult<u64> {
        self.inner.group_count(kind, tenant, group).await
    }
    async fn guard(&self, key: &str) -> StoreResult<Guard> {
        self.inner.guard(key).await
    }
    async fn idempotency(&self, tenant: &TenantId, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        self.inner.idempotency(tenant, key).await
    }
    async fn events(&self, key: &Key) -> StoreResult<Vec<AuditEvent>> {
        self.inner.events(key).await
    }
    async fn overdue(&self, kinds: &[Kind], now_ms: u64, limit: usize) -> StoreResult<Vec<Change>> {
        self.inner.overdue(kinds, now_ms, limit).await
    }
    async fn renew_lease(&self, key: &Key, version: u64) -> StoreResult<()> {
        self.inner.renew_lease(key, version).await
    }
    async fn put_api_key(&self, record: &ApiKeyRecord) -> StoreResult<()> {
        self.inner.put_api_key(record).await
    }
    async fn api_key(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.inner.api_key(hash).await
    }
    async fn api_key_by_id(&self, key_id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.inner.api_key_by_id(key_id).await
    }
    async fn tenant_api_key(&self, tenant: &TenantId, key_id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.inner.tenant_api_key(tenant, key_id).await
    }
    async fn api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.inner.api_keys().await
    }
    async fn tenant_api_keys(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        self.inner.tenant_api_keys(tenant, after, limit).await
    }
    async fn revoke_api_key(&self, key: &ApiKeyRecord, at: i64) -> StoreResult<()> {
        self.inner.revoke_api_key(key, at).await
    }
}

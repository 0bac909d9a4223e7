//! The embedded store: everything behind one mutex, so each call is one atomic step, with the
//! same conditions, results and index partitions as the DynamoDB store (its ordered maps are the
//! table's GSIs). Its test mode fails a share of writes on purpose, and its indexes lag the table
//! ([`MemoryStore::with_faults`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use super::faults::{Fault, Faults};
use super::{
    group_moves, now_epoch, partition, ApiKeyRecord, AuditEvent, Change, Delete, EventQuery, Guard, IdempotencyRecord,
    NewItem, Page, Recorded, Repository, StoreError, StoreResult, Stored, Update, VersionCheck, Write,
};
use crate::domain::key::{Key, Kind, TenantId};

#[derive(Debug, Clone)]
struct Row {
    version: u64,
    body: String,
    state: Option<String>,
    /// When its pending work is due to have moved (`None`: no pending work).
    lease: Option<u64>,
    /// When it was last written (epoch ms): the test mode's indexes lag that.
    written_ms: u64,
}

impl Row {
    fn stored(&self, key: &Key) -> Stored {
        Stored { key: key.clone(), version: self.version, body: self.body.clone(), state: self.state.clone() }
    }
}

/// How far the test mode's indexes lag the table ([`MemoryStore::with_faults`]).
const INDEX_LAG_MS: u64 = 20;

/// An index entry: (partition, sort key).
type IndexKey = (String, String);

#[derive(Debug, Default)]
struct State {
    rows: HashMap<Key, Row>,
    /// GSI1: every item of a kind of a tenant, in id order.
    lists: BTreeMap<IndexKey, Key>,
    /// GSI2: the members of each group, in id order.
    groups: BTreeMap<IndexKey, Key>,
    /// GSI8: the items with pending work, by lease.
    work: BTreeSet<(u64, Key)>,
    counters: HashMap<String, u64>,
    item_counts: HashMap<String, u64>,
    group_counts: HashMap<String, u64>,
    events: HashMap<Key, Vec<AuditEvent>>,
    guards: HashMap<String, u64>,
    idempotency: HashMap<String, IdempotencyRecord>,
    /// API keys by hash, their hashes by key id, and by (tenant, key id) for each tenant's list.
    api_keys: HashMap<String, ApiKeyRecord>,
    key_ids: BTreeMap<String, String>,
    tenant_keys: BTreeMap<(TenantId, String), String>,
}

impl State {
    fn check(&self, guard: &Option<Guard>, check: &Option<VersionCheck>) -> StoreResult<()> {
        if let Some(g) = guard {
            if self.guards.get(&g.key).copied().unwrap_or(0) != g.version {
                return Err(StoreError::Conflict);
            }
        }
        if let Some(c) = check {
            if self.rows.get(&c.key).map(|r| r.version) != Some(c.version) {
                return Err(StoreError::Conflict);
            }
        }
        Ok(())
    }

    /// Puts an item in a group, with the group's count.
    fn enter(&mut self, key: &Key, group: &str, order: &str) {
        let group = partition::group(key.kind(), key.tenant(), group);
        *self.group_counts.entry(group.clone()).or_default() += 1;
        self.groups.insert((group, order.to_owned()), key.clone());
    }

    /// Takes an item out of a group, with the group's count.
    fn leave(&mut self, key: &Key, group: &str, order: &str) {
        let group = partition::group(key.kind(), key.tenant(), group);
        self.groups.remove(&(group.clone(), order.to_owned()));
        if let Some(count) = self.group_counts.get_mut(&group) {
            *count = count.saturating_sub(1);
        }
    }

    /// Applies a checked create.
    fn insert(&mut self, item: NewItem) -> Stored {
        let tenant = item.key.tenant().clone();
        self.bump(item.guard);
        if let Some(record) = item.idempotency {
            self.idempotency.insert(partition::idempotency(&tenant, &record.key), record);
        }
        let kind = item.key.kind();
        let list = partition::list(kind, &tenant);
        *self.item_counts.entry(list.clone()).or_default() += 1;
        self.lists.insert((list, item.order.clone()), item.key.clone());
        for group in item.groups.iter().flatten() {
            self.enter(&item.key, group, &item.order);
        }
        self.events.entry(item.key.clone()).or_default().push(item.event);
        let lease = self.lease(&item.key, None, item.work_pending, item.lease_ms);
        let row = Row { version: 1, body: item.body, state: item.state, lease, written_ms: super::now_ms() };
        let stored = row.stored(&item.key);
        self.rows.insert(item.key, row);
        stored
    }

    /// Applies a checked change.
    fn replace(&mut self, update: Update) -> Stored {
        for (group, by) in group_moves(&update.previous_groups, &update.groups) {
            if by < 0 {
                self.leave(&update.key, &group, &update.order);
            } else {
                self.enter(&update.key, &group, &update.order);
            }
        }
        self.bump(update.guard);
        self.events.entry(update.key.clone()).or_default().push(update.event);
        let was = self.rows.get(&update.key).and_then(|row| row.lease);
        let lease = self.lease(&update.key, was, update.work_pending, update.lease_ms);
        let row = Row {
            version: update.expected_version + 1,
            body: update.body,
            state: update.state,
            lease,
            written_ms: super::now_ms(),
        };
        let stored = row.stored(&update.key);
        self.rows.insert(update.key, row);
        stored
    }

    /// Moves an item's entry in the work index: out at its old lease, in at a new one if its
    /// work is pending.
    fn lease(&mut self, key: &Key, was: Option<u64>, pending: bool, due: Option<u64>) -> Option<u64> {
        if let Some(was) = was {
            self.work.remove(&(was, key.clone()));
        }
        let lease = pending.then(|| super::lease_from_now(due));
        if let Some(lease) = lease {
            self.work.insert((lease, key.clone()));
        }
        lease
    }

    fn bump(&mut self, guard: Option<Guard>) {
        if let Some(g) = guard {
            self.guards.insert(g.key, g.version + 1);
        }
    }

    /// The keys of one index partition in order (or reversed), after the order key `after`. Every
    /// entry of partition `p` lies in `[(p, ""), (p + "\0", ""))`.
    fn keys<'a>(
        index: &'a BTreeMap<IndexKey, Key>,
        partition: String,
        after: Option<&str>,
        descending: bool,
    ) -> Box<dyn Iterator<Item = &'a Key> + 'a> {
        let at = |sort: &str| (partition.clone(), sort.to_owned());
        let first = Bound::Included(at(""));
        let end = Bound::Excluded((format!("{partition}\0"), String::new()));
        let range = match (after, descending) {
            (None, _) => index.range((first, end)),
            (Some(sort), false) => index.range((Bound::Excluded(at(sort)), end)),
            (Some(sort), true) => index.range((first, Bound::Excluded(at(sort)))),
        };
        if descending {
            Box::new(range.rev().map(|(_, key)| key))
        } else {
            Box::new(range.map(|(_, key)| key))
        }
    }
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// The test mode's faults, if it is on ([`MemoryStore::with_faults`]).
    faults: Option<Faults>,
    /// Items and index keys read (see [`Repository::items_read`]).
    reads: AtomicU64,
    /// Index reads of the test mode that left out an item written a moment before.
    lagged: AtomicU64,
    /// How far the test mode's indexes lag the table.
    lag_ms: u64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The test mode: a `share` of writes and deletes fail, seeded by `seed` ([`Faults`]), and
    /// index reads (lists, groups and their pages) miss what was written in the last
    /// 20 ms.
    pub fn with_faults(share: f64, seed: u64) -> Self {
        Self { faults: Some(Faults::new(share, seed)), lag_ms: INDEX_LAG_MS, ..Self::default() }
    }

    /// The test mode with its indexes `lag_ms` behind the table instead of 20 ms.
    pub fn with_index_lag(self, lag_ms: u64) -> Self {
        Self { lag_ms, ..self }
    }

    /// How many faults the test mode has injected (0 without it).
    pub fn faults_injected(&self) -> u64 {
        self.faults.as_ref().map_or(0, Faults::injected)
    }

    /// How many of the test mode's index reads left out an item written a moment before.
    pub fn lagged_reads(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }

    /// This write's fault, if the test mode gives it one: refused at once unless it strikes
    /// after the commit (returned for [`Self::after_commit`]). Only the worker's writes (all by
    /// the system) panic; a client's get the timeout instead.
    fn fault(&self, worker: bool) -> StoreResult<Option<Fault>> {
        match self.faults.as_ref().and_then(Faults::roll) {
            Some(Fault::PanicBefore) if worker => panic!("injected fault: the step died before its write"),
            Some(Fault::PanicAfter) if worker => Ok(Some(Fault::PanicAfter)),
            Some(Fault::TimeoutAfter | Fault::PanicAfter) => Ok(Some(Fault::TimeoutAfter)),
            Some(fault) => Err(fault.error()),
            None => Ok(None),
        }
    }

    /// A fault that strikes once the write has committed: the caller never hears it succeeded.
    fn after_commit(fault: Option<Fault>) -> StoreResult<()> {
        match fault {
            Some(Fault::PanicAfter) => panic!("injected fault: the step died after its write"),
            Some(fault) => Err(fault.error()),
            None => Ok(()),
        }
    }

    fn lock(&self) -> StoreResult<std::sync::MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| StoreError::Internal("memory store lock poisoned".into()))
    }
}

#[async_trait]
impl Repository for MemoryStore {
    async fn next_ids(&self, tenant: &TenantId, counter: &str, n: u64) -> StoreResult<u64> {
        let mut state = self.lock()?;
        let next = state.counters.entry(partition::counter(tenant, counter)).or_insert(0);
        *next += n.max(1);
        Ok(*next)
    }

    async fn get(&self, key: &Key) -> StoreResult<Option<Stored>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(self.lock()?.rows.get(key).map(|row| row.stored(key)))
    }

    fn items_read(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    async fn write(&self, writes: Vec<Write>) -> StoreResult<Vec<Stored>> {
        Write::check_all(&writes)?;
        let after = self.fault(writes.iter().all(|w| w.event().by.is_none()))?;
        let mut state = self.lock()?;
        for write in &writes {
            match write {
                Write::Create(item) => {
                    let tenant = item.key.tenant();
                    let taken = item.idempotency.as_ref().is_some_and(|r| {
                        let key = partition::idempotency(tenant, &r.key);
                        state.idempotency.get(&key).is_some_and(|r| r.expires_at > now_epoch())
                    });
                    if taken {
                        return Err(StoreError::IdempotencyKeyTaken);
                    }
                    if state.rows.contains_key(&item.key) {
                        return Err(StoreError::Conflict);
                    }
                    state.check(&item.guard, &item.check)?;
                }
                Write::Update(update) => {
                    match state.rows.get(&update.key) {
                        Some(row) if row.version == update.expected_version => {}
                        _ => return Err(StoreError::Conflict),
                    }
                    state.check(&update.guard, &update.check)?;
                }
            }
        }
        let stored = writes
            .into_iter()
            .map(|write| match write {
                Write::Create(item) => state.insert(item),
                Write::Update(update) => state.replace(update),
            })
            .collect();
        drop(state);
        Self::after_commit(after).map(|()| stored)
    }

    async fn delete(&self, delete: Delete) -> StoreResult<()> {
        delete.check_tenant()?;
        let after = self.fault(false)?;
        let mut state = self.lock()?;
        match state.rows.get(&delete.key) {
            Some(row) if row.version == delete.expected_version => {}
            _ => return Err(StoreError::Conflict),
        }
        state.check(&None, &delete.check)?;
        let (kind, tenant, sort) = (delete.key.kind(), delete.key.tenant().clone(), delete.order.clone());
        if let Some(lease) = state.rows.remove(&delete.key).and_then(|row| row.lease) {
            state.work.remove(&(lease, delete.key.clone()));
        }
        let list = partition::list(kind, &tenant);
        state.lists.remove(&(list.clone(), sort.clone()));
        if let Some(count) = state.item_counts.get_mut(&list) {
            *count = count.saturating_sub(1);
        }
        for group in delete.groups.iter().flatten() {
            state.leave(&delete.key, group, &sort);
        }
        state.events.entry(delete.key).or_default().push(delete.event);
        drop(state);
        Self::after_commit(after)
    }

    async fn overdue(&self, kinds: &[Kind], now_ms: u64, limit: usize) -> StoreResult<Vec<(u64, Change)>> {
        let state = self.lock()?;
        let due = state.work.iter().take_while(|(lease, _)| *lease < now_ms);
        let changes: Vec<(u64, Change)> = due
            .filter(|(_, key)| kinds.contains(&key.kind()))
            .take(limit)
            .filter_map(|(lease, key)| {
                let row = state.rows.get(key)?;
                Some((*lease, Change { key: key.clone(), version: row.version, work_pending: true }))
            })
            .collect();
        self.reads.fetch_add(changes.len() as u64, Ordering::Relaxed);
        Ok(changes)
    }

    async fn renew_lease(&self, key: &Key, version: u64) -> StoreResult<()> {
        let mut state = self.lock()?;
        let Some(was) = state.rows.get(key).filter(|row| row.version == version).and_then(|row| row.lease) else {
            return Ok(());
        };
        let lease = state.lease(key, Some(was), true, None);
        if let Some(row) = state.rows.get_mut(key) {
            row.lease = lease;
        }
        Ok(())
    }

    async fn count(&self, kind: Kind, tenant: &TenantId) -> StoreResult<u64> {
        Ok(self.lock()?.item_counts.get(&partition::list(kind, tenant)).copied().unwrap_or(0))
    }

    async fn group(&self, kind: Kind, tenant: &TenantId, group: &str) -> StoreResult<Vec<Stored>> {
        self.page(kind, tenant, &Page { group: Some(group), limit: usize::MAX, ..Page::default() }).await
    }

    async fn page(&self, kind: Kind, tenant: &TenantId, index: &Page<'_>) -> StoreResult<Vec<Stored>> {
        let state = self.lock()?;
        let (map, partition) = match index.group {
            Some(group) => (&state.groups, partition::group(kind, tenant, group)),
            None => (&state.lists, partition::list(kind, tenant)),
        };
        let skip = usize::try_from(index.skip).unwrap_or(usize::MAX);
        // The test mode's indexes lag the table, as DynamoDB's global secondary indexes do: an
        // item written in the last `lag_ms` is not in them yet.
        let lag_from = self.faults.as_ref().map(|_| super::now_ms().saturating_sub(self.lag_ms));
        let mut lagged = false;
        let page: Vec<Stored> = State::keys(map, partition, index.after, index.descending)
            .filter_map(|key| state.rows.get(key).map(|row| (key, row)))
            .filter(|(_, row)| {
                let seen = lag_from.is_none_or(|from| row.written_ms < from);
                lagged |= !seen;
                seen
            })
            .skip(skip)
            .take(index.limit)
            .map(|(key, row)| row.stored(key))
            .collect();
        if lagged {
            self.lagged.fetch_add(1, Ordering::Relaxed);
        }
        let keys = index.skip.min(u64::try_from(state.rows.len()).unwrap_or(u64::MAX));
        self.reads.fetch_add(keys + page.len() as u64, Ordering::Relaxed);
        Ok(page)
    }

    async fn group_count(&self, kind: Kind, tenant: &TenantId, group: &str) -> StoreResult<u64> {
        Ok(self.lock()?.group_counts.get(&partition::group(kind, tenant, group)).copied().unwrap_or(0))
    }

    async fn guard(&self, key: &str) -> StoreResult<Guard> {
        let state = self.lock()?;
        Ok(Guard { key: key.to_owned(), version: state.guards.get(key).copied().unwrap_or(0) })
    }

    async fn idempotency(&self, tenant: &TenantId, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        let state = self.lock()?;
        let record = state.idempotency.get(&partition::idempotency(tenant, key));
        Ok(record.filter(|r| r.expires_at > now_epoch()).cloned())
    }

    async fn events(&self, key: &Key) -> StoreResult<Vec<AuditEvent>> {
        Ok(self.lock()?.events.get(key).cloned().unwrap_or_default())
    }

    async fn event(&self, key: &Key, version: u64) -> StoreResult<Option<AuditEvent>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let index = usize::try_from(version).ok().and_then(|v| v.checked_sub(1));
        Ok(index.and_then(|i| self.lock().ok()?.events.get(key)?.get(i).cloned()))
    }

    /// Every event of the tenant (or of the resource) filtered here: the embedded store has no
    /// index of events, and its reads are counted as the DynamoDB store's Query would read them.
    async fn published(&self, tenant: &TenantId, query: &EventQuery) -> StoreResult<Vec<Recorded>> {
        let state = self.lock()?;
        let trails = state.events.iter().filter(|(key, _)| match &query.resource {
            Some(resource) => *key == resource,
            None => key.tenant() == tenant,
        });
        let mut found: Vec<Recorded> = trails
            .flat_map(|(key, trail)| {
                trail.iter().enumerate().map(|(i, event)| Recorded {
                    key: key.clone(),
                    version: i as u64 + 1,
                    event: event.clone(),
                })
            })
            .filter(|recorded| query.admits(recorded))
            .collect();
        found.sort_by_key(|recorded| std::cmp::Reverse(recorded.order()));
        found.truncate(query.limit);
        self.reads.fetch_add(found.len() as u64, Ordering::Relaxed);
        Ok(found)
    }

    async fn put_api_key(&self, record: &ApiKeyRecord) -> StoreResult<()> {
        let tenants = record.tenant_ids()?;
        let mut state = self.lock()?;
        if state.api_keys.contains_key(&record.hash) || state.key_ids.contains_key(&record.key_id) {
            return Err(StoreError::Conflict);
        }
        for tenant in tenants {
            state.tenant_keys.insert((tenant, record.key_id.clone()), record.hash.clone());
        }
        state.key_ids.insert(record.key_id.clone(), record.hash.clone());
        state.api_keys.insert(record.hash.clone(), record.clone());
        Ok(())
    }

    async fn api_key(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        Ok(self.lock()?.api_keys.get(hash).cloned())
    }

    async fn api_key_by_id(&self, key_id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let state = self.lock()?;
        Ok(state.key_ids.get(key_id).and_then(|hash| state.api_keys.get(hash)).cloned())
    }

    async fn tenant_api_key(&self, tenant: &TenantId, key_id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let state = self.lock()?;
        let hash = state.tenant_keys.get(&(tenant.clone(), key_id.to_owned()));
        Ok(hash.and_then(|hash| state.api_keys.get(hash)).cloned())
    }

    async fn api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        let state = self.lock()?;
        Ok(state.key_ids.values().filter_map(|hash| state.api_keys.get(hash)).cloned().collect())
    }

    async fn tenant_api_keys(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        let state = self.lock()?;
        let first = match after {
            Some(after) => Bound::Excluded((tenant.clone(), after.to_owned())),
            None => Bound::Included((tenant.clone(), String::new())),
        };
        Ok(state
            .tenant_keys
            .range((first, Bound::Unbounded))
            .take_while(|((t, _), _)| t == tenant)
            .take(limit)
            .filter_map(|(_, hash)| state.api_keys.get(hash))
            .cloned()
            .collect())
    }

    async fn revoke_api_key(&self, key: &ApiKeyRecord, at: i64) -> StoreResult<()> {
        if let Some(stored) = self.lock()?.api_keys.get_mut(&key.hash) {
            stored.revoked_at.get_or_insert(at);
        }
        Ok(())
    }
}

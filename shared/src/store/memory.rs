//! The embedded store: everything behind one mutex, so each call is one atomic step, with the
//! same conditions and results as the DynamoDB store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use super::{
    now_epoch, AuditEvent, Delete, Entity, Guard, IdempotencyRecord, NewItem, Repository, StoreError, StoreResult,
    Stored, Update, VersionCheck, MAX_WRITE,
};
use crate::domain::list::ListQuery;

#[derive(Debug, Clone)]
struct Row {
    version: u64,
    doc: Value,
    group: Option<String>,
    state: Option<Value>,
}

impl Row {
    fn stored(&self, id: u64) -> Stored {
        Stored { id, version: self.version, doc: self.doc.clone(), state: self.state.clone() }
    }
}

#[derive(Debug, Default)]
struct State {
    rows: BTreeMap<(Entity, u64), Row>,
    counters: HashMap<String, u64>,
    events: HashMap<(Entity, u64), Vec<AuditEvent>>,
    guards: HashMap<String, u64>,
    idempotency: HashMap<String, IdempotencyRecord>,
    api_keys: HashMap<String, Value>,
}

impl State {
    fn check(&self, guard: &Option<Guard>, check: &Option<VersionCheck>) -> StoreResult<()> {
        if let Some(g) = guard {
            if self.guards.get(&g.key).copied().unwrap_or(0) != g.version {
                return Err(StoreError::Conflict);
            }
        }
        if let Some(c) = check {
            if self.rows.get(&(c.entity, c.id)).map(|r| r.version) != Some(c.version) {
                return Err(StoreError::Conflict);
            }
        }
        Ok(())
    }

    fn bump(&mut self, guard: Option<Guard>) {
        if let Some(g) = guard {
            self.guards.insert(g.key, g.version + 1);
        }
    }
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> StoreResult<std::sync::MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| StoreError::Internal("memory store lock poisoned".into()))
    }
}

#[async_trait]
impl Repository for MemoryStore {
    async fn next_ids(&self, counter: &str, n: u64) -> StoreResult<u64> {
        let mut state = self.lock()?;
        let next = state.counters.entry(counter.to_owned()).or_insert(0);
        *next += n.max(1);
        Ok(*next)
    }

    async fn get(&self, entity: Entity, id: u64) -> StoreResult<Option<Stored>> {
        let state = self.lock()?;
        Ok(state.rows.get(&(entity, id)).map(|row| row.stored(id)))
    }

    async fn create(&self, item: NewItem) -> StoreResult<Stored> {
        let mut state = self.lock()?;
        if let Some(record) = &item.idempotency {
            if state.idempotency.get(&record.key).is_some_and(|r| r.expires_at > now_epoch()) {
                return Err(StoreError::IdempotencyKeyTaken);
            }
        }
        if state.rows.contains_key(&(item.entity, item.id)) {
            return Err(StoreError::Conflict);
        }
        state.check(&item.guard, &item.check)?;
        state.bump(item.guard);
        if let Some(record) = item.idempotency {
            state.idempotency.insert(record.key.clone(), record);
        }
        state.events.entry((item.entity, item.id)).or_default().push(item.event);
        let row = Row { version: 1, doc: item.doc, group: item.group, state: None };
        let stored = row.stored(item.id);
        state.rows.insert((item.entity, item.id), row);
        Ok(stored)
    }

    async fn write(&self, updates: Vec<Update>) -> StoreResult<Vec<Stored>> {
        if updates.is_empty() || updates.len() > MAX_WRITE {
            return Err(StoreError::Internal(format!("a write takes 1 to {MAX_WRITE} changes, not {}", updates.len())));
        }
        let mut state = self.lock()?;
        for update in &updates {
            match state.rows.get(&(update.entity, update.id)) {
                Some(row) if row.version == update.expected_version => {}
                _ => return Err(StoreError::Conflict),
            }
            state.check(&update.guard, &update.check)?;
        }
        let mut saved = Vec::with_capacity(updates.len());
        for update in updates {
            state.bump(update.guard);
            state.events.entry((update.entity, update.id)).or_default().push(update.event);
            let row =
                Row { version: update.expected_version + 1, doc: update.doc, group: update.group, state: update.state };
            saved.push(row.stored(update.id));
            state.rows.insert((update.entity, update.id), row);
        }
        Ok(saved)
    }

    async fn delete(&self, delete: Delete) -> StoreResult<()> {
        let mut state = self.lock()?;
        match state.rows.get(&(delete.entity, delete.id)) {
            Some(row) if row.version == delete.expected_version => {}
            _ => return Err(StoreError::Conflict),
        }
        state.check(&None, &delete.check)?;
        state.rows.remove(&(delete.entity, delete.id));
        state.events.entry((delete.entity, delete.id)).or_default().push(delete.event);
        Ok(())
    }

    async fn list(&self, entity: Entity, query: &ListQuery) -> StoreResult<(Vec<Value>, u64)> {
        let state = self.lock()?;
        let items = state.rows.range((entity, 0)..=(entity, u64::MAX)).map(|(_, row)| row.doc.clone()).collect();
        Ok(query.apply(items))
    }

    async fn group(&self, entity: Entity, group: &str) -> StoreResult<Vec<Stored>> {
        let state = self.lock()?;
        Ok(state
            .rows
            .range((entity, 0)..=(entity, u64::MAX))
            .filter(|(_, row)| row.group.as_deref() == Some(group))
            .map(|((_, id), row)| row.stored(*id))
            .collect())
    }

    async fn guard(&self, key: &str) -> StoreResult<Guard> {
        let state = self.lock()?;
        Ok(Guard { key: key.to_owned(), version: state.guards.get(key).copied().unwrap_or(0) })
    }

    async fn idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        let state = self.lock()?;
        Ok(state.idempotency.get(key).filter(|r| r.expires_at > now_epoch()).cloned())
    }

    async fn events(&self, entity: Entity, id: u64) -> StoreResult<Vec<AuditEvent>> {
        let state = self.lock()?;
        Ok(state.events.get(&(entity, id)).cloned().unwrap_or_default())
    }

    async fn put_api_key(&self, hash: &str, caller: Value) -> StoreResult<()> {
        self.lock()?.api_keys.insert(hash.to_owned(), caller);
        Ok(())
    }

    async fn api_key(&self, hash: &str) -> StoreResult<Option<Value>> {
        Ok(self.lock()?.api_keys.get(hash).cloned())
    }
}

//! The embedded store: everything behind one mutex, so each call is one atomic step, with the
//! same conditions and results as the DynamoDB store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use super::{
    now_epoch, AuditEvent, Entity, Guard, IdempotencyRecord, NewItem, Repository, StoreError, StoreResult, Stored,
    Update,
};
use crate::domain::list::ListQuery;

#[derive(Debug, Clone)]
struct Row {
    version: u64,
    doc: Value,
    group: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    rows: BTreeMap<(Entity, u64), Row>,
    counters: HashMap<Entity, u64>,
    events: HashMap<(Entity, u64), Vec<AuditEvent>>,
    guards: HashMap<String, u64>,
    idempotency: HashMap<String, IdempotencyRecord>,
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

fn check_guard(state: &State, guard: &Option<Guard>) -> StoreResult<()> {
    match guard {
        Some(g) if state.guards.get(&g.key).copied().unwrap_or(0) != g.version => Err(StoreError::Conflict),
        _ => Ok(()),
    }
}

fn bump_guard(state: &mut State, guard: Option<Guard>) {
    if let Some(g) = guard {
        state.guards.insert(g.key, g.version + 1);
    }
}

#[async_trait]
impl Repository for MemoryStore {
    async fn next_id(&self, entity: Entity) -> StoreResult<u64> {
        let mut state = self.lock()?;
        let next = state.counters.entry(entity).or_insert(0);
        *next += 1;
        Ok(*next)
    }

    async fn get(&self, entity: Entity, id: u64) -> StoreResult<Option<Stored>> {
        let state = self.lock()?;
        Ok(state.rows.get(&(entity, id)).map(|row| Stored { id, version: row.version, doc: row.doc.clone() }))
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
        check_guard(&state, &item.guard)?;
        bump_guard(&mut state, item.guard);
        if let Some(record) = item.idempotency {
            state.idempotency.insert(record.key.clone(), record);
        }
        state.events.entry((item.entity, item.id)).or_default().push(item.event);
        let row = Row { version: 1, doc: item.doc.clone(), group: item.group };
        state.rows.insert((item.entity, item.id), row);
        Ok(Stored { id: item.id, version: 1, doc: item.doc })
    }

    async fn update(&self, update: Update) -> StoreResult<Stored> {
        let mut state = self.lock()?;
        match state.rows.get(&(update.entity, update.id)) {
            Some(row) if row.version == update.expected_version => {}
            _ => return Err(StoreError::Conflict),
        }
        check_guard(&state, &update.guard)?;
        bump_guard(&mut state, update.guard);
        let version = update.expected_version + 1;
        state.events.entry((update.entity, update.id)).or_default().push(update.event);
        let row = Row { version, doc: update.doc.clone(), group: update.group };
        state.rows.insert((update.entity, update.id), row);
        Ok(Stored { id: update.id, version, doc: update.doc })
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
            .map(|((_, id), row)| Stored { id: *id, version: row.version, doc: row.doc.clone() })
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
}

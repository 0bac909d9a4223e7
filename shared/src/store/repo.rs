//! The typed facade handlers and the worker use: `Repo<R>` reads domain values (`Versioned<R>`)
//! and builds writes from them, for one scope. Keys are made here from the resource's declared
//! kind and the facade's scope, so a caller names only an id.

use std::marker::PhantomData;

use serde_json::Value;

use super::{
    guard_key, AuditEvent, Delete, Guard, NewItem, Page, Repository, StoreError, StoreResult, Stored, Update,
    VersionCheck,
};
use crate::domain::key::{Id, IdType, Key, Scope};
use crate::domain::list::ListQuery;
use crate::domain::resource::Resource;

/// A resource as read: the value, its key and version, its stored JSON text (what a GET
/// answers), and the worker's state beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<R> {
    pub value: R,
    pub key: Key,
    pub version: u64,
    pub body: String,
    pub state: Option<String>,
}

impl<R: Resource> Versioned<R> {
    /// A condition on this item staying at the version read, for a write of another item.
    pub fn check(&self) -> VersionCheck {
        VersionCheck { key: self.key.clone(), version: self.version }
    }

    /// The worker's state, when it is of type `S`.
    pub fn state<S: serde::de::DeserializeOwned>(&self) -> Option<S> {
        self.state.as_deref().and_then(|s| serde_json::from_str(s).ok())
    }
}

/// Decodes a stored item as `R`; a body that is not an `R` is a corrupt item (500).
pub fn decode<R: Resource>(stored: Stored) -> StoreResult<Versioned<R>> {
    let value = serde_json::from_str(&stored.body)
        .map_err(|e| StoreError::Internal(format!("stored {} is unreadable: {e}", stored.key)))?;
    Ok(Versioned { value, key: stored.key, version: stored.version, body: stored.body, state: stored.state })
}

/// A resource's JSON text, as it is stored and answered.
pub fn encode<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Internal(format!("cannot encode a resource: {e}")))
}

/// The resources of type `R` in one scope.
pub struct Repo<'a, R> {
    store: &'a dyn Repository,
    scope: Scope,
    _kind: PhantomData<fn() -> R>,
}

impl<'a, R: Resource> Repo<'a, R> {
    pub fn new(store: &'a dyn Repository, scope: Scope) -> Self {
        Self { store, scope, _kind: PhantomData }
    }

    /// The resources of a globally scoped kind.
    pub fn global(store: &'a dyn Repository) -> Self {
        Self::new(store, Scope::Global)
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn store(&self) -> &'a dyn Repository {
        self.store
    }

    /// The key of `id` in this scope. An id of the wrong type is a bug here: the edge parses path
    /// ids as the kind's type.
    pub fn key(&self, id: Id) -> StoreResult<Key> {
        Key::new(R::KIND, self.scope.clone(), id).map_err(|e| StoreError::Internal(e.to_string()))
    }

    pub async fn get(&self, id: Id) -> StoreResult<Option<Versioned<R>>> {
        self.store.get(&self.key(id)?).await?.map(decode).transpose()
    }

    /// A fresh id: the kind's counter in this scope, or a new UUID.
    pub async fn next_id(&self) -> StoreResult<Id> {
        Ok(match R::KIND.ids {
            IdType::Counter => Id::Int(self.store.next_ids(&self.scope, R::KIND.name, 1).await?),
            IdType::Uuid => Id::Uuid(uuid::Uuid::new_v4()),
        })
    }

    /// The create of `value` with its audit event; the caller adds a guard, check or idempotency
    /// record when it has one.
    pub fn new_item(&self, value: &R, event: AuditEvent) -> StoreResult<NewItem> {
        Ok(NewItem {
            key: self.key(value.id())?,
            order: value.order(),
            body: encode(value)?,
            group: value.group(),
            work_pending: value.work_pending(),
            guard: None,
            check: None,
            event,
            idempotency: None,
        })
    }

    /// The change of `current` into `next`, conditional on the version read. The worker's state
    /// is cleared unless the caller keeps it.
    pub fn update_of(&self, current: &Versioned<R>, next: &R, event: AuditEvent) -> StoreResult<Update> {
        Ok(Update {
            key: current.key.clone(),
            order: current.value.order(),
            expected_version: current.version,
            body: encode(next)?,
            group: next.group(),
            previous_group: current.value.group(),
            work_pending: next.work_pending(),
            guard: None,
            check: None,
            state: None,
            event,
        })
    }

    pub fn delete_of(&self, current: &Versioned<R>, event: AuditEvent) -> Delete {
        Delete {
            key: current.key.clone(),
            order: current.value.order(),
            expected_version: current.version,
            group: current.value.group(),
            check: None,
            event,
        }
    }

    /// The current guard of one of this kind's groups.
    pub async fn guard(&self, group: &str) -> StoreResult<Guard> {
        self.store.guard(&guard_key(R::KIND, &self.scope, group)).await
    }

    pub async fn list(&self, query: &ListQuery) -> StoreResult<(Vec<Value>, u64)> {
        self.store.list(R::KIND, &self.scope, query).await
    }

    pub async fn group(&self, group: &str) -> StoreResult<Vec<Versioned<R>>> {
        self.store.group(R::KIND, &self.scope, group).await?.into_iter().map(decode).collect()
    }

    /// One page of an index in this scope (one query): see [`Repository::page`].
    pub async fn page(&self, index: &Page<'_>) -> StoreResult<Vec<Versioned<R>>> {
        self.store.page(R::KIND, &self.scope, index).await?.into_iter().map(decode).collect()
    }

    pub async fn group_count(&self, group: &str) -> StoreResult<u64> {
        self.store.group_count(R::KIND, &self.scope, group).await
    }
}

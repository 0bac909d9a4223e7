//! The facades handlers and the worker use. [`Tenant`] is one tenant's view of the store: every
//! key it reads and every write it makes is of that tenant (a write naming another tenant's item
//! is refused before it reaches the store), and it is the only way the edge and the worker reach
//! the store. `Repo<R>` reads domain values (`Versioned<R>`) of one kind of that tenant and builds
//! writes from them; keys are made here from the resource's declared kind and the tenant, so a
//! caller names only an id.

use std::marker::PhantomData;

use serde_json::Value;

use super::{
    guard_key, ApiKeyRecord, AuditEvent, Delete, EventQuery, Guard, IdempotencyRecord, NewItem, Page, Recorded,
    Repository, StoreError, StoreResult, Stored, Update, VersionCheck, Write,
};
use crate::domain::event::{event_type, Change};
use crate::domain::key::{Id, IdType, Key, TenantId};
use crate::domain::list::{ListQuery, Plan, Source, MAX_BOUNDED_READ};
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
    /// Its JSON as stored.
    fn json(&self) -> StoreResult<Value> {
        serde_json::from_str(&self.body)
            .map_err(|e| StoreError::Internal(format!("stored {} is unreadable: {e}", self.key)))
    }

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

/// The group slots of a resource, checked against the table's indexes.
fn groups_of<R: Resource>(value: &R) -> StoreResult<Vec<Option<String>>> {
    let groups = value.groups().map_err(|e| StoreError::Internal(format!("cannot index a resource: {e}")))?;
    if groups.len() > super::GROUP_SLOTS {
        return Err(StoreError::Internal(format!("{} has {} group slots", R::KIND.name, groups.len())));
    }
    Ok(groups)
}

/// A resource's JSON.
fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<Value> {
    serde_json::to_value(value).map_err(|e| StoreError::Internal(format!("cannot encode a resource: {e}")))
}

/// The largest published event an audit item carries: DynamoDB's 400 KB item less the audit
/// event's own fields. A change whose resource and old values together pass it is published
/// without `previous` (its resource alone is at most [`super::MAX_ITEM_BYTES`]).
const MAX_PUBLISHED_BYTES: usize = 390 * 1024;

/// `event` with what it publishes, when the change is an event: its type, the resource's JSON
/// text, and for a change the old values of the fields it changed.
fn published(
    mut event: AuditEvent,
    kind: crate::domain::key::Kind,
    change: Change<'_>,
    body: &str,
    moved: Option<(&Value, &Value)>,
) -> AuditEvent {
    let Some(event_type) = event_type(kind, change) else { return event };
    let shown = |text: String| crate::domain::event::redacted(kind, text);
    let previous = moved.map(|(before, after)| shown(crate::domain::event::previous(before, after).to_string()));
    event.previous = previous.filter(|p| p.len() + body.len() <= MAX_PUBLISHED_BYTES);
    event.event_type = Some(event_type);
    event.object = Some(shown(body.to_owned()));
    event
}

/// A stored resource's JSON.
fn json(stored: &Stored) -> StoreResult<Value> {
    serde_json::from_str(&stored.body)
        .map_err(|e| StoreError::Internal(format!("stored {} is unreadable: {e}", stored.key)))
}

/// A stored item that is not the resource it should be, and why.
#[derive(Debug)]
pub struct Unreadable {
    pub key: Key,
    pub error: StoreError,
}

/// A list's answer: a page and the number of matches, or a query no index serves whose narrowest
/// choice holds this many items (a 400 naming the parameter, [`ListQuery::too_broad`]).
#[derive(Debug)]
pub enum Listed {
    Page(Vec<Value>, u64),
    TooBroad(u64),
}

/// One tenant's view of the store.
#[derive(Clone)]
pub struct Tenant<'a> {
    store: &'a dyn Repository,
    id: TenantId,
}

fn foreign() -> StoreError {
    StoreError::Internal("a write of one tenant named another tenant's item".into())
}

impl<'a> Tenant<'a> {
    pub fn new(store: &'a dyn Repository, id: TenantId) -> Self {
        Self { store, id }
    }

    pub fn id(&self) -> &TenantId {
        &self.id
    }

    /// The resources of type `R` of this tenant.
    pub fn repo<R: Resource>(&self) -> Repo<'a, R> {
        Repo { tenant: self.clone(), _kind: PhantomData }
    }

    /// Reserves `n` fresh numbers of this tenant's counter `counter`; returns the last.
    pub async fn next_ids(&self, counter: &str, n: u64) -> StoreResult<u64> {
        self.store.next_ids(&self.id, counter, n).await
    }

    /// One transaction of this tenant's items ([`Repository::write`]).
    pub async fn write(&self, writes: Vec<Write>) -> StoreResult<Vec<Stored>> {
        for write in &writes {
            self.check(write.key())?;
        }
        self.store.write(writes).await
    }

    pub async fn create(&self, item: NewItem) -> StoreResult<Stored> {
        self.check(&item.key)?;
        self.store.create(item).await
    }

    pub async fn update(&self, update: Update) -> StoreResult<Stored> {
        self.check(&update.key)?;
        self.store.update(update).await
    }

    /// Refuses a key of another tenant.
    fn check(&self, key: &Key) -> StoreResult<()> {
        if key.tenant() == &self.id {
            Ok(())
        } else {
            Err(foreign())
        }
    }

    pub async fn delete(&self, delete: Delete) -> StoreResult<()> {
        self.check(&delete.key)?;
        self.store.delete(delete).await
    }

    /// A stored item of this tenant by key (a key of another tenant reads nothing).
    pub async fn get(&self, key: &Key) -> StoreResult<Option<Stored>> {
        if key.tenant() != &self.id {
            return Ok(None);
        }
        self.store.get(key).await
    }

    /// The published event of version `version` of this tenant's item `key` (another tenant's
    /// key, or an audit event that is not published, reads nothing).
    pub async fn event(&self, key: &Key, version: u64) -> StoreResult<Option<Recorded>> {
        if key.tenant() != &self.id {
            return Ok(None);
        }
        let event = self.store.event(key, version).await?.filter(|e| e.event_type.is_some());
        Ok(event.map(|event| Recorded { key: key.clone(), version, event }))
    }

    /// This tenant's published events, newest first ([`Repository::published`]).
    pub async fn published(&self, query: &EventQuery) -> StoreResult<Vec<Recorded>> {
        if query.resource.as_ref().is_some_and(|key| key.tenant() != &self.id) {
            return Ok(Vec::new());
        }
        self.store.published(&self.id, query).await
    }

    pub async fn idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        self.store.idempotency(&self.id, key).await
    }

    /// Stores a key of this tenant alone.
    pub async fn put_api_key(&self, record: &ApiKeyRecord) -> StoreResult<()> {
        if record.caller.tenants != [self.id.as_str()] {
            return Err(foreign());
        }
        self.store.put_api_key(record).await
    }

    /// One of this tenant's keys by id.
    pub async fn api_key(&self, key_id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.store.tenant_api_key(&self.id, key_id).await
    }

    pub async fn api_keys(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<ApiKeyRecord>> {
        self.store.tenant_api_keys(&self.id, after, limit).await
    }

    /// Revokes one of this tenant's keys (as [`Tenant::api_key`] read it).
    pub async fn revoke_api_key(&self, key: &ApiKeyRecord, at: i64) -> StoreResult<()> {
        if !key.caller.tenants.iter().any(|t| t == self.id.as_str()) {
            return Err(foreign());
        }
        self.store.revoke_api_key(key, at).await
    }
}

/// The resources of type `R` of one tenant.
pub struct Repo<'a, R> {
    tenant: Tenant<'a>,
    _kind: PhantomData<fn() -> R>,
}

impl<'a, R: Resource> Repo<'a, R> {
    pub fn tenant(&self) -> &Tenant<'a> {
        &self.tenant
    }

    /// The key of `id` in this tenant. An id of the wrong type is a bug here: the edge parses
    /// path ids as the kind's type.
    pub fn key(&self, id: Id) -> StoreResult<Key> {
        Key::new(R::KIND, self.tenant.id.clone(), id).map_err(|e| StoreError::Internal(e.to_string()))
    }

    /// Items by id, each read by key (strongly consistent, never through an index that may lag),
    /// concurrently, in the order asked: `None` for one that does not exist.
    pub async fn get_many(&self, ids: impl IntoIterator<Item = Id>) -> StoreResult<Vec<Option<Versioned<R>>>> {
        futures_util::future::try_join_all(ids.into_iter().map(|id| self.get(id))).await
    }

    pub async fn get(&self, id: Id) -> StoreResult<Option<Versioned<R>>> {
        self.tenant.store.get(&self.key(id)?).await?.map(decode).transpose()
    }

    /// A fresh id: the kind's counter in this tenant, or a new UUID.
    pub async fn next_id(&self) -> StoreResult<Id> {
        Ok(match R::KIND.ids {
            IdType::Counter => Id::Int(self.tenant.next_ids(R::KIND.name, 1).await?),
            IdType::Uuid => Id::Uuid(uuid::Uuid::new_v4()),
        })
    }

    /// The create of `value` with its audit event (published when it is an event); the caller adds
    /// a guard, check or idempotency record when it has one.
    pub fn new_item(&self, value: &R, event: AuditEvent) -> StoreResult<NewItem> {
        let body = encode(value)?;
        let event = published(event, R::KIND, Change::Created(&to_json(value)?), &body, None);
        Ok(NewItem {
            key: self.key(value.id())?,
            order: value.order(),
            body,
            state: None,
            groups: groups_of(value)?,
            work_pending: value.work_pending(),
            lease_ms: value.lease_ms(),
            guard: None,
            check: None,
            event,
            idempotency: None,
        })
    }

    /// The change of `current` into `next`, conditional on the version read. The worker's state
    /// is cleared unless the caller keeps it.
    pub fn update_of(&self, current: &Versioned<R>, next: &R, event: AuditEvent) -> StoreResult<Update> {
        let body = encode(next)?;
        let event = match crate::domain::event::prefix(R::KIND) {
            None => event,
            Some(_) => {
                let (before, after) = (current.json()?, to_json(next)?);
                let change = Change::Updated { before: &before, after: &after };
                published(event, R::KIND, change, &body, Some((&before, &after)))
            }
        };
        Ok(Update {
            key: current.key.clone(),
            order: current.value.order(),
            expected_version: current.version,
            body,
            groups: groups_of(next)?,
            previous_groups: groups_of(&current.value)?,
            previous_size: current.body.len() + current.state.as_ref().map_or(0, String::len),
            work_pending: next.work_pending(),
            lease_ms: next.lease_ms(),
            guard: None,
            check: None,
            state: None,
            event,
        })
    }

    pub fn delete_of(&self, current: &Versioned<R>, event: AuditEvent) -> StoreResult<Delete> {
        let event = match crate::domain::event::prefix(R::KIND) {
            None => event,
            Some(_) => published(event, R::KIND, Change::Deleted(&current.json()?), &current.body, None),
        };
        Ok(Delete {
            key: current.key.clone(),
            order: current.value.order(),
            expected_version: current.version,
            groups: groups_of(&current.value)?,
            check: None,
            event,
        })
    }

    /// The current guard of one of this kind's groups.
    pub async fn guard(&self, group: &str) -> StoreResult<Guard> {
        self.tenant.store.guard(&guard_key(R::KIND, &self.tenant.id, group)).await
    }

    /// One page of the kind's list and the number of matches, read as [`ListQuery::plan`] says:
    /// from one index partition, or from at most [`MAX_BOUNDED_READ`] items of the narrowest
    /// choice, or refused ([`Listed::TooBroad`]) before anything but counts is read.
    pub async fn list(&self, query: &ListQuery) -> StoreResult<Listed> {
        let spec = R::LIST.ok_or_else(|| StoreError::Internal(format!("{} has no list", R::KIND.name)))?;
        match query.plan(spec) {
            Plan::Index { source, descending } => {
                let total = self.size(&source).await?;
                if query.offset() >= total {
                    return Ok(Listed::Page(Vec::new(), total));
                }
                let limit = usize::try_from(query.page_size).unwrap_or(usize::MAX);
                let page = self.read(&source, query.offset(), limit, descending).await?;
                Ok(Listed::Page(page.iter().map(json).collect::<StoreResult<_>>()?, total))
            }
            Plan::Bounded { choices } => {
                let mut sized = Vec::with_capacity(choices.len());
                for choice in choices {
                    let mut count = 0u64;
                    for source in &choice {
                        count = count.saturating_add(self.size(source).await?);
                    }
                    sized.push((count, choice));
                }
                let Some((count, narrowest)) = sized.into_iter().min_by_key(|(count, _)| *count) else {
                    return Ok(Listed::Page(Vec::new(), 0));
                };
                if count > MAX_BOUNDED_READ {
                    return Ok(Listed::TooBroad(count));
                }
                let mut items = Vec::new();
                for source in &narrowest {
                    for stored in self.read(source, 0, MAX_BOUNDED_READ as usize, false).await? {
                        items.push(json(&stored)?);
                    }
                }
                let (page, total) = query.apply(items);
                Ok(Listed::Page(page, total))
            }
        }
    }

    /// How many items an index partition holds (a kept count).
    pub async fn size(&self, source: &Source) -> StoreResult<u64> {
        match source {
            Source::All => self.count().await,
            Source::Group(_, group) => self.group_count(group).await,
        }
    }

    /// At most `limit` items of an index partition, past the first `skip`.
    pub async fn read(&self, source: &Source, skip: u64, limit: usize, descending: bool) -> StoreResult<Vec<Stored>> {
        let (group, slot) = match source {
            Source::All => (None, 0),
            Source::Group(slot, group) => (Some(group.as_str()), *slot),
        };
        let index = Page { group, slot, skip, after: None, limit, descending };
        self.tenant.store.page(R::KIND, &self.tenant.id, &index).await
    }

    /// How many items of this kind the tenant has (a kept count).
    pub async fn count(&self) -> StoreResult<u64> {
        self.tenant.store.count(R::KIND, &self.tenant.id).await
    }

    /// Every member of a group (one query), whole: an index that does not yet show the group as
    /// its count does is [`StoreError::Unavailable`] (503, tried again), never trusted by a check.
    pub async fn group(&self, group: &str) -> StoreResult<Vec<Versioned<R>>> {
        let members = self.tenant.store.group(R::KIND, &self.tenant.id, group).await?;
        // The index may lag its table (DynamoDB's global secondary indexes do); the group's count
        // is kept in the same transactions as its members and read strongly consistent.
        if members.len() as u64 != self.group_count(group).await? {
            return Err(StoreError::Unavailable(format!("the index of {} group {group} lags its table", R::KIND.name)));
        }
        members.into_iter().map(decode).collect()
    }

    /// One page of an index of this tenant (one query, as [`Repo::page`]), each item decoded on its
    /// own: one that is not an `R` (a corrupt item) is its key and why, so that a walk over a
    /// group goes on past it rather than failing at it for good.
    pub async fn page_each(&self, index: &Page<'_>) -> StoreResult<Vec<Result<Versioned<R>, Unreadable>>> {
        let page = self.tenant.store.page(R::KIND, &self.tenant.id, index).await?;
        Ok(page
            .into_iter()
            .map(|stored| {
                let key = stored.key.clone();
                decode(stored).map_err(|error| Unreadable { key, error })
            })
            .collect())
    }

    /// One page of an index of this tenant (one query): see [`Repository::page`]. A corrupt item
    /// fails the page (500); [`Repo::page_each`] reads past it.
    pub async fn page(&self, index: &Page<'_>) -> StoreResult<Vec<Versioned<R>>> {
        self.page_each(index).await?.into_iter().map(|item| item.map_err(|unreadable| unreadable.error)).collect()
    }

    pub async fn group_count(&self, group: &str) -> StoreResult<u64> {
        self.tenant.store.group_count(R::KIND, &self.tenant.id, group).await
    }
}

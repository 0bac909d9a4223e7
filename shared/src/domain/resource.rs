//! What a stored resource declares about itself: its kind (id type and scope), its id, the group
//! it belongs to, and whether the worker has something to do on it. Pure: the store reads these
//! through the typed facade (`store::repo`).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::key::{Id, Kind};
use super::list::ListSpec;

pub trait Resource: Serialize + DeserializeOwned + Send + Sync {
    const KIND: Kind;

    /// What its list endpoint filters, sorts and selects, when it is an Elevate-style list
    /// ([`ListQuery`](super::list::ListQuery)): each filter is a group slot the store indexes and
    /// counts ([`facets`](super::list::facets)).
    const LIST: Option<&'static ListSpec> = None;

    fn id(&self) -> Id;

    /// The secondary group it belongs to (a run's billing cycle, a bill's run): group slot 0.
    fn group(&self) -> Option<String> {
        None
    }

    /// Every group slot it is in: its group, then one per filter of its list ([`Self::LIST`]).
    fn groups(&self) -> Result<Vec<Option<String>>, serde_json::Error> {
        let mut groups = vec![self.group()];
        if let Some(spec) = Self::LIST {
            groups.extend(super::list::facets(spec, &serde_json::to_value(self)?));
        }
        Ok(groups)
    }

    /// The key its kind's list indexes order it by, fixed at creation: its id (integers
    /// zero-padded) unless the kind lists in another order (billing runs: newest first).
    fn order(&self) -> String {
        self.id().sort_key()
    }

    /// Whether the worker has something to do on it (the stream filter matches on this).
    fn work_pending(&self) -> bool {
        false
    }

    /// When its pending work is due (epoch ms), where that is not the time of the write plus the
    /// work lease ([`crate::store::work_lease`]): a delivery waiting for its next attempt.
    fn lease_ms(&self) -> Option<u64> {
        None
    }
}

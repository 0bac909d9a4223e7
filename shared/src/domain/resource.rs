//! What a stored resource declares about itself: its kind (id type and scope), its id, the group
//! it belongs to, and whether the worker has something to do on it. Pure: the store reads these
//! through the typed facade (`store::repo`).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::key::{Id, Kind};

pub trait Resource: Serialize + DeserializeOwned + Send + Sync {
    const KIND: Kind;

    fn id(&self) -> Id;

    /// The secondary group it belongs to (a run's billing cycle, a bill's run), fixed at creation.
    fn group(&self) -> Option<String> {
        None
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
}

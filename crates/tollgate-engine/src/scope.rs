//! What a decision borrows from while a door reads it.

use std::sync::Arc;

use arc_swap::Guard;
use smallvec::SmallVec;
use tollgate_core::Policy;
use tollgate_core::policy::Rule;

use crate::keys::KeyEntry;

/// Holds what a [`Verdict`](crate::Verdict) borrows: the policy snapshot it was decided
/// under, the verified key's record and limits, and limits sent with Envoy descriptors.
/// A door keeps one on its stack for as long as it reads the verdict; a reload in the
/// meantime never changes a decision midway.
#[derive(Default)]
pub struct Scope {
    pub(crate) policy: Option<Guard<Arc<Policy>>>,
    pub(crate) key: Option<Arc<KeyEntry>>,
    pub(crate) overrides: SmallVec<[Option<Arc<Rule>>; 4]>,
    pub(crate) identity: String,
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("key", &self.key.as_ref().map(|k| &k.record.id))
            .finish_non_exhaustive()
    }
}

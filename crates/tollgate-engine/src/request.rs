//! What a door asks of the engine, and what it gets back.

use smallvec::SmallVec;
use tollgate_core::policy::descriptor_plan::PlannedDescriptor;
use tollgate_core::{Decision, Mode, Subject};
use tollgate_registry::KeyRecord;

/// One request to decide.
#[derive(Debug, Clone)]
pub struct Request<'r> {
    /// Who is asking, as attributes or as Envoy descriptors.
    pub attributes: Attributes<'r>,
    /// The API key presented, if any: verified through the registry when one is
    /// configured, and otherwise counted by a fingerprint (never by itself).
    pub api_key: Option<&'r str>,
    /// Units to consume (for descriptors, the default of each that names none).
    pub cost: u64,
    /// Consume, or only look (a dry run, which records nothing).
    pub mode: Mode,
}

impl<'r> Request<'r> {
    /// A request of `attributes` costing one unit, consumed, with no key.
    pub fn new(attributes: Attributes<'r>) -> Self {
        Request {
            attributes,
            api_key: None,
            cost: 1,
            mode: Mode::Consume,
        }
    }
}

/// The caller, as a door knows it.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "most decisions are of a subject: boxing it would allocate for each"
)]
pub enum Attributes<'r> {
    /// Normalised attributes (user, IP, method, path, tenant, extras). The engine sets
    /// `key` (and, for a verified key, `attr.tier` and `attr.owner`) itself.
    Subject(Subject),
    /// Envoy rate limit descriptors of one domain.
    Descriptors {
        /// The domain.
        domain: &'r str,
        /// The descriptors, in the order sent. On the heap, so that a request (and every
        /// future that carries one) stays small for the subjects most decisions are of.
        descriptors: Vec<DescriptorIn<'r>>,
    },
}

/// One Envoy descriptor as sent.
#[derive(Debug, Clone, Default)]
pub struct DescriptorIn<'r> {
    /// Its entries: (key, value).
    pub entries: SmallVec<[(&'r str, &'r str); 4]>,
    /// Its own cost, when it names one.
    pub cost: Option<u64>,
    /// A limit sent with it, replacing the configured ones.
    pub limit: Option<LimitOverride>,
    /// Which of its entries holds the presented API key: that entry is counted by the
    /// key's identity instead of its value, and the key's tier limits join this
    /// descriptor.
    pub key_entry: Option<usize>,
}

/// A limit sent with a descriptor: `requests_per_unit` per unit, counted in fixed windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitOverride {
    /// Requests per unit.
    pub requests_per_unit: u32,
    /// The unit, as a position in [`tollgate_core::policy::descriptors::UNITS`].
    pub unit: usize,
}

/// What the engine decided.
#[derive(Debug)]
pub struct Verdict<'s> {
    /// The decision, with every limit's status.
    pub decision: Decision<'s>,
    /// For a descriptor request: which of the decision's limits each descriptor brought.
    pub descriptors: Vec<PlannedDescriptor<'s>>,
    /// The verified key's record.
    pub key: Option<&'s KeyRecord>,
}

impl<'s> Verdict<'s> {
    /// A verdict of `decision` alone: no descriptors, no verified key.
    pub fn bare(decision: Decision<'s>) -> Self {
        Verdict {
            decision,
            descriptors: Vec::new(),
            key: None,
        }
    }
}

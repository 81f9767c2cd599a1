//! The answer for a whole request and its header forms.
//!
//! Headers follow draft-ietf-httpapi-ratelimit-headers-10: `RateLimit-Policy` lists each
//! enforced limit's quota `q` and window `w`; `RateLimit` its remaining units `r` and `t`,
//! the seconds until they replenish (or, for a limit that denies, until the request would
//! be admitted). `Retry-After` is the largest `t` of the denying limits, so it is never
//! earlier than any of them. The legacy `X-RateLimit-*` trio describes the most
//! restrictive limit.

use smallvec::SmallVec;

use crate::algorithm::Limit;
use crate::outcome::Outcome;
use crate::policy::{FailPolicy, Rule};
use crate::time::{Nanos, ceil_secs};

/// Why a request was admitted or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// Admitted.
    Ok,
    /// A rate limit denied it.
    RateLimited,
    /// A calendar quota is used up.
    QuotaExceeded,
    /// A deny list or a penalty (`block_for`) refused it.
    Blocked,
    /// The API key is not valid.
    KeyInvalid,
    /// The API key is disabled.
    KeyDisabled,
    /// The API key has expired.
    KeyExpired,
    /// The store failed and the rule's fail policy is `deny`.
    Unavailable,
}

impl Code {
    /// The code as it appears on the wire: `OK`, `RATE_LIMITED`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::RateLimited => "RATE_LIMITED",
            Code::QuotaExceeded => "QUOTA_EXCEEDED",
            Code::Blocked => "BLOCKED",
            Code::KeyInvalid => "KEY_INVALID",
            Code::KeyDisabled => "KEY_DISABLED",
            Code::KeyExpired => "KEY_EXPIRED",
            Code::Unavailable => "UNAVAILABLE",
        }
    }
}

/// One limit's part in a decision.
#[derive(Debug, Clone)]
pub struct LimitStatus<'p> {
    /// The rule.
    pub rule: &'p Rule,
    /// The counter key.
    pub key: String,
    /// What the limit said. For a denied decision, the limits that would have admitted
    /// report their state without the request, since nothing was consumed.
    pub outcome: Outcome,
    /// The store failed and the rule's fail policy answered.
    pub degraded: bool,
}

impl LimitStatus<'_> {
    /// Whether this limit refused the request (shadow limits included).
    pub fn exceeded(&self) -> bool {
        !self.outcome.allowed
    }

    /// Whether the limit only reports.
    pub fn shadow(&self) -> bool {
        self.rule.shadow
    }

    /// Seconds for the `t` parameter: until admitted when denying, else until replenished.
    pub fn t_secs(&self) -> u64 {
        match (self.outcome.allowed, self.outcome.retry_after) {
            (false, Some(retry)) => ceil_secs(retry),
            _ => ceil_secs(self.outcome.reset),
        }
    }
}

/// The decision for one request.
#[derive(Debug, Clone)]
pub struct Decision<'p> {
    /// Whether the request may go ahead.
    pub allowed: bool,
    /// Why.
    pub code: Code,
    /// Every limit that applied, in policy order.
    pub limits: SmallVec<[LimitStatus<'p>; 4]>,
    /// The instant decided at.
    pub now: Nanos,
}

impl<'p> Decision<'p> {
    /// Builds a decision from the statuses of every applying limit.
    pub fn from_limits(limits: SmallVec<[LimitStatus<'p>; 4]>, now: Nanos) -> Self {
        let denier = limits.iter().find(|l| !l.rule.shadow && l.exceeded());
        let code = match denier {
            None => Code::Ok,
            Some(l) if l.outcome.blocked => Code::Blocked,
            Some(l) if l.degraded && l.rule.on_store_error == FailPolicy::Deny => Code::Unavailable,
            Some(l) if matches!(l.rule.limit, Limit::Quota(_)) => Code::QuotaExceeded,
            Some(_) => Code::RateLimited,
        };
        Decision {
            allowed: denier.is_none(),
            code,
            limits,
            now,
        }
    }

    /// A decision made without limits: an allow-list pass or a refusal such as a deny
    /// list or a bad key.
    pub fn bare(code: Code, now: Nanos) -> Self {
        Decision {
            allowed: code == Code::Ok,
            code,
            limits: SmallVec::new(),
            now,
        }
    }

    fn enforced(&self) -> impl Iterator<Item = &LimitStatus<'p>> {
        self.limits.iter().filter(|l| !l.rule.shadow)
    }

    /// For a denied decision, when to retry: the latest of the denying limits' waits;
    /// `None` when admitted, or when some denying limit never would admit.
    pub fn retry_after(&self) -> Option<Nanos> {
        if self.allowed {
            return None;
        }
        let mut wait = None;
        for l in self.enforced().filter(|l| l.exceeded()) {
            let w = l.outcome.retry_after?;
            wait = Some(wait.map_or(w, |x: Nanos| x.max(w)));
        }
        wait
    }

    /// The first enforced limit that denied, if any.
    pub fn denied_by(&self) -> Option<&LimitStatus<'p>> {
        self.enforced().find(|l| l.exceeded())
    }

    /// The enforced limit with the fewest units left (on a tie, the longest wait).
    pub fn most_restrictive(&self) -> Option<&LimitStatus<'p>> {
        self.enforced().min_by(|a, b| {
            (a.outcome.allowed, a.outcome.remaining)
                .cmp(&(b.outcome.allowed, b.outcome.remaining))
                .then(b.t_secs().cmp(&a.t_secs()))
        })
    }

    /// The response headers: `RateLimit-Policy`, `RateLimit`, `Retry-After` (denied only),
    /// and the legacy `X-RateLimit-Limit`, `-Remaining` and `-Reset`.
    pub fn headers(&self) -> Headers {
        let mut h = Headers::default();
        if self.enforced().next().is_none() {
            if let Some(secs) = self.retry_after().map(ceil_secs) {
                h.0.push(("retry-after", number(secs)));
            }
            return h;
        }
        // Sized for one or two limits; numbers go through `itoa` rather than the formatting
        // machinery, as these strings are built for every answer.
        let mut policy = String::with_capacity(48);
        let mut state = String::with_capacity(48);
        for l in self.enforced() {
            if !policy.is_empty() {
                policy.push_str(", ");
                state.push_str(", ");
            }
            for s in [&mut policy, &mut state] {
                s.push('"');
                s.push_str(&l.rule.name);
                s.push('"');
            }
            let (q, w) = l.rule.limit.policy(self.now, l.outcome.limit);
            push_param(&mut policy, ";q=", q);
            if let Some(w) = w {
                push_param(&mut policy, ";w=", ceil_secs(w));
            }
            push_param(&mut state, ";r=", l.outcome.remaining);
            push_param(&mut state, ";t=", l.t_secs());
        }
        h.0.push(("ratelimit-policy", policy));
        h.0.push(("ratelimit", state));
        if let Some(secs) = self.retry_after().map(ceil_secs) {
            h.0.push(("retry-after", number(secs)));
        }
        if let Some(l) = self.most_restrictive() {
            h.0.push(("x-ratelimit-limit", number(l.outcome.limit)));
            h.0.push(("x-ratelimit-remaining", number(l.outcome.remaining)));
            h.0.push(("x-ratelimit-reset", number(l.t_secs())));
        }
        h
    }
}

fn number(n: u64) -> String {
    itoa::Buffer::new().format(n).to_owned()
}

/// Appends a parameter: `key` (such as `;q=`) and then the number `n`.
fn push_param(s: &mut String, key: &str, n: u64) {
    s.push_str(key);
    s.push_str(itoa::Buffer::new().format(n));
}

/// Response headers, lower-case names in a fixed order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub SmallVec<[(&'static str, String); 6]>);

impl Headers {
    /// The value of header `name` (lower case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The headers as (name, value) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(n, v)| (*n, v.as_str()))
    }
}

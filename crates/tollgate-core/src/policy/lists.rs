//! Allow and deny lists: subjects that bypass every limit, or are always refused.

use std::collections::HashSet;

use super::matcher::Cidr;
use crate::subject::{Attr, Subject};

/// IPs, users, keys and tenants listed for allow or deny.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    /// Networks.
    pub ips: Vec<Cidr>,
    /// User ids.
    pub users: HashSet<Box<str>>,
    /// API key ids.
    pub keys: HashSet<Box<str>>,
    /// Tenants.
    pub tenants: HashSet<Box<str>>,
}

impl Lists {
    /// Whether `subject` is on the list.
    pub fn contains(&self, subject: &Subject) -> bool {
        let listed = |set: &HashSet<Box<str>>, attr: &Attr| {
            !set.is_empty() && subject.text(attr).is_some_and(|v| set.contains(v))
        };
        subject
            .ip()
            .is_some_and(|ip| self.ips.iter().any(|c| c.contains(ip)))
            || listed(&self.users, &Attr::User)
            || listed(&self.keys, &Attr::Key)
            || listed(&self.tenants, &Attr::Tenant)
    }

    /// The entry of the list `subject` is on, as `ips: 10.0.0.0/8` or `users: "u42"`, for
    /// explaining a decision the list made alone.
    pub fn entry(&self, subject: &Subject) -> Option<String> {
        if let Some(cidr) = subject
            .ip()
            .and_then(|ip| self.ips.iter().find(|c| c.contains(ip)))
        {
            return Some(format!("ips: {cidr}"));
        }
        [
            ("users", &self.users, Attr::User),
            ("keys", &self.keys, Attr::Key),
            ("tenants", &self.tenants, Attr::Tenant),
        ]
        .into_iter()
        .find_map(|(name, set, attr)| {
            let value = subject.text(&attr)?;
            set.contains(value).then(|| format!("{name}: {value:?}"))
        })
    }

    /// Whether the lists are all empty.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
            && self.users.is_empty()
            && self.keys.is_empty()
            && self.tenants.is_empty()
    }
}

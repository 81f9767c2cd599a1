//! What a rule finds true now, and the changes that brings against what is firing.

use std::collections::BTreeSet;

use tollgate_registry::FiringAlert;

/// A rule's condition found true for one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// What it is about: `owner:acme@2026-12`, `key:key_…`, `rule:…`, `store`.
    pub subject: String,
    /// The measured value.
    pub value: f64,
    /// One line saying what happened.
    pub summary: String,
    /// The details: account, owner, period, used, limit…
    pub data: serde_json::Value,
}

/// The alerts to fire (true now, not firing) and to resolve (firing, true no more).
pub fn reconcile(
    now: Vec<Condition>,
    firing: &[FiringAlert],
) -> (Vec<Condition>, Vec<&FiringAlert>) {
    let firing_subjects: BTreeSet<&str> = firing.iter().map(|f| f.subject.as_str()).collect();
    let true_now: BTreeSet<String> = now.iter().map(|c| c.subject.clone()).collect();
    let mut seen = BTreeSet::new();
    let fire = now
        .into_iter()
        .filter(|c| !firing_subjects.contains(c.subject.as_str()) && seen.insert(c.subject.clone()))
        .collect();
    let resolve = firing
        .iter()
        .filter(|f| !true_now.contains(&f.subject))
        .collect();
    (fire, resolve)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(subject: &str) -> Condition {
        Condition {
            subject: subject.into(),
            value: 1.0,
            summary: String::new(),
            data: serde_json::Value::Null,
        }
    }

    fn firing(subject: &str) -> FiringAlert {
        FiringAlert {
            rule: "r".into(),
            subject: subject.into(),
            since: 0,
            value: 1.0,
        }
    }

    #[test]
    fn fires_the_new_keeps_the_firing_resolves_the_gone() {
        let standing = [firing("a"), firing("b")];
        let (fire, resolve) = reconcile(vec![cond("b"), cond("c"), cond("c")], &standing);
        assert_eq!(fire, vec![cond("c")]);
        assert_eq!(resolve, vec![&standing[0]]);
    }

    #[test]
    fn nothing_changes_when_nothing_does() {
        let standing = [firing("a")];
        let (fire, resolve) = reconcile(vec![cond("a")], &standing);
        assert!(fire.is_empty());
        assert!(resolve.is_empty());
    }
}

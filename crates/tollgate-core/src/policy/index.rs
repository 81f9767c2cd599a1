//! The rule index: planning a decision looks up the rules a subject can match instead of
//! scanning every rule.
//!
//! Each rule is filed under one *anchor* taken from its conditions: an exact value, a CIDR
//! block or a glob's literal prefix. A subject looks up its own values under each anchor
//! kind; only rules with no usable anchor (e.g. `user: "*"`) are examined for every
//! subject. Candidates are then verified against all their conditions.

use std::collections::HashMap;
use std::net::IpAddr;

use smallvec::SmallVec;

use super::matcher::{Condition, Pattern, mask};
use super::rule::Rule;
use crate::subject::{Attr, Subject};

/// Candidate rule numbers for one subject, in no particular order.
pub type Candidates = SmallVec<[u32; 16]>;

#[derive(Debug, Default)]
pub(crate) struct Index {
    exact: HashMap<Attr, HashMap<Box<str>, Vec<u32>>>,
    cidr: Vec<CidrBucket>,
    prefix: Vec<PrefixBucket>,
    residual: Vec<u32>,
}

#[derive(Debug)]
struct CidrBucket {
    prefix: u8,
    v4: bool,
    nets: HashMap<IpAddr, Vec<u32>>,
}

#[derive(Debug)]
struct PrefixBucket {
    attr: Attr,
    len: usize,
    prefixes: HashMap<Box<str>, Vec<u32>>,
}

enum Anchor<'a> {
    Exact(&'a Attr, Vec<&'a str>),
    Cidr(Vec<(u8, bool, IpAddr)>),
    Prefix(&'a Attr, Vec<&'a str>, Vec<&'a str>),
}

/// How good an anchor a condition makes (lower is better), and the anchor.
fn anchor_of(c: &Condition) -> Option<(u8, Anchor<'_>)> {
    if c.patterns.is_empty() || c.patterns.iter().any(|p| matches!(p, Pattern::Any)) {
        return None;
    }
    if c.attr == Attr::Ip {
        let nets = c
            .patterns
            .iter()
            .map(|p| match p {
                Pattern::Cidr(n) => Some((n.prefix, n.addr.is_ipv4(), n.addr)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        return Some((1, Anchor::Cidr(nets)));
    }
    let mut exact = Vec::new();
    let mut prefixes = Vec::new();
    for p in &c.patterns {
        match p {
            Pattern::Exact(v) => exact.push(v.as_str()),
            Pattern::Glob(_) => match p.literal_prefix() {
                Some(pre) if !pre.is_empty() => prefixes.push(pre),
                _ => return None,
            },
            _ => return None,
        }
    }
    if prefixes.is_empty() {
        Some((0, Anchor::Exact(&c.attr, exact)))
    } else {
        Some((2, Anchor::Prefix(&c.attr, exact, prefixes)))
    }
}

impl Index {
    pub(crate) fn build(rules: &[Rule]) -> Self {
        let mut ix = Index::default();
        for (i, rule) in rules.iter().enumerate() {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            let best = rule
                .conditions
                .iter()
                .filter_map(anchor_of)
                .min_by_key(|(rank, _)| *rank);
            match best.map(|(_, a)| a) {
                None => ix.residual.push(id),
                Some(Anchor::Exact(attr, values)) => ix.add_exact(attr, &values, id),
                Some(Anchor::Cidr(nets)) => {
                    for (prefix, v4, addr) in nets {
                        let pos = ix
                            .cidr
                            .iter()
                            .position(|b| b.prefix == prefix && b.v4 == v4);
                        let bucket = match pos {
                            Some(p) => ix.cidr.get_mut(p),
                            None => {
                                ix.cidr.push(CidrBucket {
                                    prefix,
                                    v4,
                                    nets: HashMap::new(),
                                });
                                ix.cidr.last_mut()
                            }
                        };
                        // Always a bucket: the one found or the one just pushed.
                        if let Some(bucket) = bucket {
                            bucket.nets.entry(addr).or_default().push(id);
                        }
                    }
                }
                Some(Anchor::Prefix(attr, exact, prefixes)) => {
                    ix.add_exact(attr, &exact, id);
                    for pre in prefixes {
                        let len = pre.len();
                        let pos = ix
                            .prefix
                            .iter()
                            .position(|b| b.attr == *attr && b.len == len);
                        let bucket = match pos {
                            Some(p) => ix.prefix.get_mut(p),
                            None => {
                                ix.prefix.push(PrefixBucket {
                                    attr: attr.clone(),
                                    len,
                                    prefixes: HashMap::new(),
                                });
                                ix.prefix.last_mut()
                            }
                        };
                        // Always a bucket: the one found or the one just pushed.
                        if let Some(bucket) = bucket {
                            bucket.prefixes.entry(pre.into()).or_default().push(id);
                        }
                    }
                }
            }
        }
        ix
    }

    fn add_exact(&mut self, attr: &Attr, values: &[&str], id: u32) {
        let by_value = self.exact.entry(attr.clone()).or_default();
        for v in values {
            by_value.entry((*v).into()).or_default().push(id);
        }
    }

    /// The rules `subject` may match, sorted and without duplicates.
    pub(crate) fn candidates(&self, subject: &Subject) -> Candidates {
        let mut out = Candidates::new();
        out.extend_from_slice(&self.residual);
        for (attr, by_value) in &self.exact {
            if let Some(ids) = subject.text(attr).and_then(|v| by_value.get(v)) {
                out.extend_from_slice(ids);
            }
        }
        if let Some(ip) = subject.ip() {
            for b in &self.cidr {
                if b.v4 == ip.is_ipv4()
                    && let Some(ids) = b.nets.get(&mask(ip, b.prefix))
                {
                    out.extend_from_slice(ids);
                }
            }
        }
        for b in &self.prefix {
            let hit = subject
                .text(&b.attr)
                .and_then(|v| v.get(..b.len))
                .and_then(|pre| b.prefixes.get(pre));
            if let Some(ids) = hit {
                out.extend_from_slice(ids);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

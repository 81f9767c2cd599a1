//! Match conditions: exact values, globs, and CIDR blocks for IPs.

use std::net::IpAddr;

use thiserror::Error;

use crate::subject::{Attr, Subject, normalise_path};

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address, masked.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a CIDR does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{0}` is not an IP address or CIDR block")]
pub struct CidrError(pub String);

impl Cidr {
    /// Parses `203.0.113.0/24`, `2001:db8::/32` or a bare address (a /32 or /128).
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        let err = || CidrError(text.into());
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| err())?)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse::<IpAddr>().map_err(|_| err())?.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(err());
        }
        Ok(Cidr {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

/// `ip` with every bit past `prefix` cleared.
pub fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = u32::MAX
                .checked_shl(32u32.saturating_sub(u32::from(prefix)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(v4) & m).into())
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX
                .checked_shl(128u32.saturating_sub(u32::from(prefix)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(v6) & m).into())
        }
    }
}

/// One accepted value of a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// `*`: any value, as long as the attribute is present.
    Any,
    /// One exact (normalised) value.
    Exact(String),
    /// A glob: `*` matches any run of characters, `?` any one character.
    Glob(String),
    /// An IP network (for `ip` only).
    Cidr(Cidr),
}

impl Pattern {
    /// Parses a pattern for `attr`, normalising exact values the way [`Subject`] does.
    pub fn parse(attr: &Attr, text: &str) -> Result<Self, CidrError> {
        if text == "*" {
            return Ok(Pattern::Any);
        }
        if *attr == Attr::Ip {
            return Cidr::parse(text).map(Pattern::Cidr);
        }
        let text = match attr {
            Attr::Method => text.to_ascii_uppercase(),
            Attr::Path if !text.contains(['*', '?']) => normalise_path(text),
            _ => text.to_owned(),
        };
        Ok(if text.contains(['*', '?']) {
            Pattern::Glob(text)
        } else {
            Pattern::Exact(text)
        })
    }

    fn matches_text(&self, value: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(e) => e == value,
            Pattern::Glob(g) => glob_match(g.as_bytes(), value.as_bytes()),
            Pattern::Cidr(_) => false,
        }
    }

    /// The text before the first wildcard of a glob.
    pub fn literal_prefix(&self) -> Option<&str> {
        match self {
            Pattern::Glob(g) => g.find(['*', '?']).map(|i| &g[..i]),
            _ => None,
        }
    }
}

/// One condition: the attribute must be present and match one of the patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The attribute tested.
    pub attr: Attr,
    /// Accepted values; any one suffices.
    pub patterns: Vec<Pattern>,
}

impl Condition {
    /// Whether `subject` satisfies this condition.
    pub fn matches(&self, subject: &Subject) -> bool {
        if self.attr == Attr::Ip {
            let Some(ip) = subject.ip() else { return false };
            return self.patterns.iter().any(|p| match p {
                Pattern::Any => true,
                Pattern::Cidr(c) => c.contains(ip),
                _ => false,
            });
        }
        let Some(value) = subject.text(&self.attr) else {
            return false;
        };
        self.patterns.iter().any(|p| p.matches_text(value))
    }
}

/// Whether `text` matches the glob `pattern` (`*` any run, `?` any one character).
pub fn glob(pattern: &str, text: &str) -> bool {
    glob_match(pattern.as_bytes(), text.as_bytes())
}

/// Glob matching with `*` and `?`, in linear time for one `*` and at worst O(n·m).
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // What is left of each to match.
    let (mut p, mut t) = (pattern, text);
    // After the last `*` seen: the pattern past it, and the text from where it ends.
    let mut star: Option<(&[u8], &[u8])> = None;
    while let Some((&tc, t_rest)) = t.split_first() {
        match p.split_first() {
            Some((b'*', p_rest)) => {
                star = Some((p_rest, t));
                p = p_rest;
            }
            Some((&c, p_rest)) if c == b'?' || c == tc => {
                p = p_rest;
                t = t_rest;
            }
            // Backtrack: the last `*` takes one more character.
            _ => match star.and_then(|(after, from)| Some((after, from.split_first()?.1))) {
                Some((after, from)) => {
                    p = after;
                    t = from;
                    star = Some((after, from));
                }
                None => return false,
            },
        }
    }
    p.iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"/api/*", b"/api/orders/1"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(!glob_match(b"a?c", b"ac"));
        assert!(glob_match(b"*.example.*", b"www.example.com"));
        assert!(!glob_match(b"/api/*/x", b"/api/1/y"));
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.1.2.3/8").unwrap();
        assert!(c.contains("10.200.0.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
    }
}

//! The subject of a decision: the normalised attributes of one request.
//!
//! Every door (HTTP, forward-auth, gRPC, proxy) turns its request into a `Subject`; rules
//! only ever see normalised values, so `post`, `POST` and ` POST` cannot be three counters
//! and `/a/../login` cannot dodge a rule on `/login`.

use std::fmt::Write as _;
use std::net::IpAddr;

use smallvec::SmallVec;
use thiserror::Error;

/// The longest attribute value accepted, in bytes.
pub const MAX_VALUE_LEN: usize = 1024;

/// The most extra attributes one subject may carry.
pub const MAX_EXTRA_ATTRIBUTES: usize = 32;

/// A subject attribute that rules can match and key templates can name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attr {
    /// The user id (`user`).
    User,
    /// The client IP (`ip`).
    Ip,
    /// The HTTP method (`method`).
    Method,
    /// The request path (`path`).
    Path,
    /// The tenant (`tenant`).
    Tenant,
    /// The verified API key's id (`key`).
    Key,
    /// Any other attribute (`attr.NAME`).
    Extra(Box<str>),
}

impl Attr {
    /// Parses an attribute name: `user`, `ip`, `method`, `path`, `tenant`, `key` or
    /// `attr.NAME`.
    pub fn parse(name: &str) -> Option<Attr> {
        Some(match name {
            "user" => Attr::User,
            "ip" => Attr::Ip,
            "method" => Attr::Method,
            "path" => Attr::Path,
            "tenant" => Attr::Tenant,
            "key" => Attr::Key,
            _ => {
                let extra = name.strip_prefix("attr.")?;
                if extra.is_empty() || !extra.bytes().all(is_name_byte) {
                    return None;
                }
                Attr::Extra(extra.into())
            }
        })
    }

    /// The attribute's name as written in policies.
    pub fn name(&self) -> String {
        match self {
            Attr::User => "user".into(),
            Attr::Ip => "ip".into(),
            Attr::Method => "method".into(),
            Attr::Path => "path".into(),
            Attr::Tenant => "tenant".into(),
            Attr::Key => "key".into(),
            Attr::Extra(n) => format!("attr.{n}"),
        }
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// Why an attribute value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SubjectError {
    /// The attribute name is not one Tollgate knows.
    #[error("unknown attribute `{0}` (expected user, ip, method, path, tenant, key or attr.NAME)")]
    UnknownAttribute(String),
    /// The value is longer than [`MAX_VALUE_LEN`].
    #[error("attribute `{name}` is {len} bytes long; the limit is {MAX_VALUE_LEN}")]
    TooLong {
        /// The attribute.
        name: String,
        /// Its length.
        len: usize,
    },
    /// The value is empty or holds control characters.
    #[error("attribute `{0}` is empty or holds control characters")]
    Invalid(String),
    /// The IP address does not parse.
    #[error("`{0}` is not an IP address")]
    BadIp(String),
    /// The method is not an HTTP token.
    #[error("`{0}` is not an HTTP method")]
    BadMethod(String),
    /// More than [`MAX_EXTRA_ATTRIBUTES`] extra attributes.
    #[error("more than {MAX_EXTRA_ATTRIBUTES} extra attributes")]
    TooManyAttributes,
}

/// The normalised attributes of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    user: Option<Box<str>>,
    ip: Option<IpAddr>,
    method: Option<Box<str>>,
    path: Option<Box<str>>,
    tenant: Option<Box<str>>,
    key: Option<Box<str>>,
    extra: SmallVec<[(Box<str>, Box<str>); 2]>,
}

impl Subject {
    /// An empty subject.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets attribute `name` (as [`Attr::parse`] reads it) to `value`, normalised.
    pub fn set(&mut self, name: &str, value: &str) -> Result<&mut Self, SubjectError> {
        let attr = Attr::parse(name).ok_or_else(|| SubjectError::UnknownAttribute(name.into()))?;
        self.set_attr(&attr, value)
    }

    /// Builder form of [`set`](Self::set).
    pub fn with(mut self, name: &str, value: &str) -> Result<Self, SubjectError> {
        self.set(name, value)?;
        Ok(self)
    }

    /// Sets `attr` to `value`, normalised.
    pub fn set_attr(&mut self, attr: &Attr, value: &str) -> Result<&mut Self, SubjectError> {
        if value.len() > MAX_VALUE_LEN {
            return Err(SubjectError::TooLong {
                name: attr.name(),
                len: value.len(),
            });
        }
        let value = value.trim();
        if value.is_empty() || value.chars().any(char::is_control) {
            return Err(SubjectError::Invalid(attr.name()));
        }
        match attr {
            Attr::User => self.user = Some(value.into()),
            Attr::Ip => self.ip = Some(parse_ip(value)?),
            Attr::Method => self.method = Some(normalise_method(value)?.into()),
            Attr::Path => self.path = Some(normalise_path(value).into()),
            Attr::Tenant => self.tenant = Some(value.into()),
            Attr::Key => self.key = Some(value.into()),
            Attr::Extra(name) => match self.extra.binary_search_by(|(n, _)| (**n).cmp(name)) {
                Ok(i) => {
                    if let Some(entry) = self.extra.get_mut(i) {
                        entry.1 = value.into();
                    }
                }
                Err(i) => {
                    if self.extra.len() >= MAX_EXTRA_ATTRIBUTES {
                        return Err(SubjectError::TooManyAttributes);
                    }
                    self.extra.insert(i, (name.clone(), value.into()));
                }
            },
        }
        Ok(self)
    }

    /// Sets the client IP from an address already parsed.
    pub fn set_ip(&mut self, ip: IpAddr) -> &mut Self {
        self.ip = Some(ip.to_canonical());
        self
    }

    /// The client IP, canonical (an IPv4-mapped IPv6 address reads as IPv4).
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// The value of a text attribute; `None` for [`Attr::Ip`] (see [`ip`](Self::ip)) and
    /// for attributes not set.
    pub fn text(&self, attr: &Attr) -> Option<&str> {
        match attr {
            Attr::User => self.user.as_deref(),
            Attr::Ip => None,
            Attr::Method => self.method.as_deref(),
            Attr::Path => self.path.as_deref(),
            Attr::Tenant => self.tenant.as_deref(),
            Attr::Key => self.key.as_deref(),
            Attr::Extra(name) => self
                .extra
                .binary_search_by(|(n, _)| (**n).cmp(name))
                .ok()
                .and_then(|i| self.extra.get(i))
                .map(|entry| &*entry.1),
        }
    }

    /// Whether `attr` is set.
    pub fn has(&self, attr: &Attr) -> bool {
        match attr {
            Attr::Ip => self.ip.is_some(),
            other => self.text(other).is_some(),
        }
    }

    /// Appends the counter-key form of `attr` to `out`: IPv6 addresses grouped by their
    /// `/ipv6_prefix` network, other values with `%`, `:`, `{`, `}` and `|` escaped so two
    /// different subjects never render the same key. Returns false when `attr` is not set.
    pub fn write_key_part(&self, attr: &Attr, ipv6_prefix: u8, out: &mut String) -> bool {
        if let Attr::Ip = attr {
            let Some(ip) = self.ip else { return false };
            match ip {
                IpAddr::V4(v4) => {
                    // Octet by octet through `itoa`: `Ipv4Addr`'s `Display` goes through the
                    // formatting machinery twice, on every decision keyed by IP.
                    let mut digits = itoa::Buffer::new();
                    for (i, octet) in v4.octets().into_iter().enumerate() {
                        if i > 0 {
                            out.push('.');
                        }
                        out.push_str(digits.format(octet));
                    }
                }
                IpAddr::V6(v6) if ipv6_prefix >= 128 => {
                    let _ = write!(out, "{v6}");
                }
                IpAddr::V6(v6) => {
                    let bits = u128::from(v6);
                    let mask = u128::MAX
                        .checked_shl(128u32.saturating_sub(u32::from(ipv6_prefix)))
                        .unwrap_or(0);
                    let net = std::net::Ipv6Addr::from(bits & mask);
                    let _ = write!(out, "{net}/{ipv6_prefix}");
                }
            }
            return true;
        }
        let Some(value) = self.text(attr) else {
            return false;
        };
        for ch in value.chars() {
            if matches!(ch, '%' | ':' | '{' | '}' | '|') {
                let _ = write!(out, "%{:02X}", u32::from(ch));
            } else {
                out.push(ch);
            }
        }
        true
    }
}

fn parse_ip(value: &str) -> Result<IpAddr, SubjectError> {
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    bare.parse::<IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| SubjectError::BadIp(value.into()))
}

fn normalise_method(value: &str) -> Result<String, SubjectError> {
    let ok = value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(SubjectError::BadMethod(value.into()))
    }
}

/// Normalises a request path: drops the query and fragment, resolves `.` and `..`
/// (also percent-encoded), removes empty segments and a trailing slash.
pub fn normalise_path(value: &str) -> String {
    let end = value.find(['?', '#']).unwrap_or(value.len());
    let mut segments: SmallVec<[&str; 16]> = SmallVec::new();
    for seg in value[..end].split(['/', '\\']) {
        match dot_segment(seg) {
            Some(1) => {}
            Some(_) => {
                segments.pop();
            }
            None if seg.is_empty() => {}
            None => segments.push(seg),
        }
    }
    let mut out = String::with_capacity(end.saturating_add(1));
    if segments.is_empty() {
        out.push('/');
    }
    for seg in segments {
        out.push('/');
        out.push_str(seg);
    }
    out
}

/// `Some(1)` for `.`, `Some(2)` for `..`, also when written `%2e`.
fn dot_segment(seg: &str) -> Option<u8> {
    let mut rest = seg.as_bytes();
    let mut dots = 0u8;
    while !rest.is_empty() {
        rest = match rest {
            [b'.', tail @ ..] => tail,
            [b'%', b'2', e, tail @ ..] if e.eq_ignore_ascii_case(&b'e') => tail,
            _ => return None,
        };
        dots = dots.saturating_add(1);
        if dots > 2 {
            return None;
        }
    }
    (dots > 0).then_some(dots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised() {
        for (raw, want) in [
            ("/login", "/login"),
            ("//a///b/", "/a/b"),
            ("/a/../login?x=1", "/login"),
            ("/a/%2e%2E/login", "/login"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("", "/"),
            ("/./", "/"),
            ("/a/b#frag", "/a/b"),
            ("\\a\\..\\b", "/b"),
        ] {
            assert_eq!(normalise_path(raw), want, "{raw}");
        }
    }

    #[test]
    fn ips_are_canonical_and_v6_grouped() {
        let s = Subject::new().with("ip", "::ffff:203.0.113.7").unwrap();
        let mut k = String::new();
        s.write_key_part(&Attr::Ip, 64, &mut k);
        assert_eq!(k, "203.0.113.7");
        let s = Subject::new().with("ip", "2001:db8:0:1:aaaa::1").unwrap();
        let mut k = String::new();
        s.write_key_part(&Attr::Ip, 64, &mut k);
        assert_eq!(k, "2001:db8:0:1::/64");
        let mut k = String::new();
        s.write_key_part(&Attr::Ip, 128, &mut k);
        assert_eq!(k, "2001:db8:0:1:aaaa::1");
        assert!(Subject::new().with("ip", "not-an-ip").is_err());
    }

    #[test]
    fn values_are_bounded_and_escaped() {
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        assert!(matches!(
            Subject::new().with("user", &long),
            Err(SubjectError::TooLong { .. })
        ));
        assert!(Subject::new().with("user", "a\nb").is_err());
        assert!(Subject::new().with("colour", "red").is_err());
        let s = Subject::new()
            .with("user", "a:b")
            .unwrap()
            .with("method", "post")
            .unwrap();
        assert_eq!(s.text(&Attr::Method), Some("POST"));
        let mut k = String::new();
        s.write_key_part(&Attr::User, 64, &mut k);
        assert_eq!(k, "a%3Ab");
        assert!(Subject::new().with("method", "GE T").is_err());
    }

    #[test]
    fn extra_attributes() {
        let s = Subject::new().with("attr.plan", "pro").unwrap();
        assert_eq!(s.text(&Attr::Extra("plan".into())), Some("pro"));
        assert!(!s.has(&Attr::Extra("zone".into())));
        assert!(Attr::parse("attr.").is_none());
        assert!(Attr::parse("attr.a b").is_none());
    }
}

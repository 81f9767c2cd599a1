//! What every door translates alike: the client's address behind trusted proxies, and how a
//! refused request is answered (its status, its problem `type` and title). Pure functions
//! over plain values, so a door on any wire form (the server's forward-auth, the tower
//! Layer, the proxy) answers the same request the same way.

use std::net::IpAddr;

use tollgate_core::Code;
use tollgate_core::policy::matcher::Cidr;

use crate::request::Verdict;

/// Where problem types (RFC 9457 `type`) are documented; a problem's `type` is this and its
/// slug.
pub const PROBLEM_TYPE_BASE: &str = "https://tollgate.dev/problems/";

/// The client's address: `peer`, unless `peer` lies in `trusted`, in which case the
/// rightmost address of `X-Forwarded-For` that is not itself trusted; when every hop is
/// trusted, the leftmost; without a usable `X-Forwarded-For`, `X-Real-IP` (`real_ip`).
/// `xff` holds the header's lines in the order received (a proxy may append a line of its
/// own rather than extend the last), read as one comma-separated list; unparsable hops are
/// skipped. Every address is canonical (an IPv4-mapped IPv6 address reads as IPv4).
pub fn forwarded_ip<'a, X>(trusted: &[Cidr], peer: IpAddr, xff: X, real_ip: Option<&str>) -> IpAddr
where
    X: IntoIterator<Item = &'a str>,
    X::IntoIter: DoubleEndedIterator,
{
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut leftmost = None;
    let hops = xff
        .into_iter()
        .rev()
        .flat_map(|line| line.rsplit(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical());
    for ip in hops {
        if !is_trusted(ip) {
            return ip;
        }
        leftmost = Some(ip);
    }
    if let Some(ip) = leftmost {
        return ip;
    }
    real_ip
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .map_or(peer, |ip| ip.to_canonical())
}

/// How a refused request is answered over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status: 429 for limits, 401 for an invalid key, 403 for a disabled or expired
    /// key and for a blocked client, 503 when the store or the key registry is unavailable.
    pub status: u16,
    /// The last segment of the problem's `type`.
    pub slug: &'static str,
    /// The problem's title.
    pub title: &'static str,
    /// Which limit refused, when one did.
    pub detail: Option<String>,
}

/// How the refusal of `verdict` is answered; meaningful for a verdict that did not allow.
pub fn refusal(verdict: &Verdict<'_>) -> Refusal {
    let d = &verdict.decision;
    let (status, slug, title) = match d.code {
        Code::KeyDisabled => (403, "key-disabled", "The API key is disabled"),
        Code::KeyExpired => (403, "key-expired", "The API key has expired"),
        Code::KeyInvalid => (401, "key-invalid", "The API key is not valid"),
        Code::Blocked => (403, "blocked", "The client is blocked"),
        Code::Unavailable if verdict.key.is_none() && d.limits.is_empty() => {
            (503, "unavailable", "The key registry is unavailable")
        }
        Code::Unavailable => (503, "unavailable", "The limit store is unavailable"),
        Code::QuotaExceeded => (429, "quota-exceeded", "Quota exceeded"),
        Code::Ok | Code::RateLimited => (429, "rate-limited", "Too many requests"),
    };
    let detail = d
        .denied_by()
        .map(|l| format!("limit {:?} exceeded", l.rule.name));
    Refusal {
        status,
        slug,
        title,
        detail,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_rightmost_untrusted_hop_counts_only_behind_a_trusted_peer() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let xff = Some("198.51.100.7, 203.0.113.9, 10.0.0.2");
        assert_eq!(
            forwarded_ip(&trusted, ip("10.0.0.1"), xff, None),
            ip("203.0.113.9")
        );
        assert_eq!(
            forwarded_ip(&trusted, ip("192.0.2.1"), xff, None),
            ip("192.0.2.1")
        );
        assert_eq!(
            forwarded_ip(&trusted, ip("10.0.0.1"), Some("10.0.0.3, 10.0.0.2"), None),
            ip("10.0.0.3")
        );
        assert_eq!(
            forwarded_ip(&trusted, ip("10.0.0.1"), Some("junk"), Some("198.51.100.1")),
            ip("198.51.100.1")
        );
        assert_eq!(
            forwarded_ip(&trusted, ip("::ffff:10.0.0.1"), None, None),
            ip("10.0.0.1")
        );
        // A line the nearest proxy appended is read after the client's own.
        let lines = ["198.51.100.7", "203.0.113.9, 10.0.0.2"];
        assert_eq!(
            forwarded_ip(&trusted, ip("10.0.0.1"), lines, None),
            ip("203.0.113.9")
        );
        assert_eq!(
            forwarded_ip(&trusted, ip("10.0.0.1"), ["198.51.100.7", "10.0.0.2"], None),
            ip("198.51.100.7")
        );
    }
}

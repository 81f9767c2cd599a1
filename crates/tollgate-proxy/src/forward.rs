//! The request an upstream is sent: its URI on the chosen origin, hop-by-hop headers gone
//! (RFC 9110 §7.6.1), and `X-Forwarded-*` and `Forwarded` saying who asked.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Uri, uri};
use tollgate_core::policy::matcher::Cidr;

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers that belong to one connection and are never passed on.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Whether a request asks to switch protocols (a WebSocket, say).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes the hop-by-hop headers, and those `Connection` names; an upgrade keeps its
/// `Upgrade` and `Connection: upgrade`, which the upstream needs to switch.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let upgrade = is_upgrade(headers)
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten();
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
    if let Some(u) = upgrade {
        headers.insert(header::UPGRADE, u);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Who asked, for the forwarding headers.
#[derive(Debug, Clone)]
pub struct Client<'a> {
    /// The connection's peer.
    pub peer: IpAddr,
    /// Peers whose forwarding headers are believed.
    pub trusted: &'a [Cidr],
    /// The scheme the client used.
    pub proto: &'static str,
}

/// Sets `X-Forwarded-For` (the peer appended to what a trusted peer sent, else the peer
/// alone), `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded` (RFC 7239) the same way.
pub fn set_forwarded(headers: &mut HeaderMap, client: &Client<'_>, host: Option<&str>) {
    let peer = client.peer.to_canonical();
    let trusted = client.trusted.iter().any(|c| c.contains(peer));
    let prior = |headers: &HeaderMap, name: &HeaderName| -> Option<String> {
        let parts: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (trusted && !parts.is_empty()).then(|| parts.join(", "))
    };
    let xff = match prior(headers, &X_FORWARDED_FOR) {
        Some(p) => format!("{p}, {peer}"),
        None => peer.to_string(),
    };
    let node = match peer {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    let mut this_hop = format!("for={node};proto={}", client.proto);
    if let Some(h) = host.filter(|h| h.bytes().all(|b| b.is_ascii_graphic() && b != b'"')) {
        this_hop.push_str(";host=\"");
        this_hop.push_str(h);
        this_hop.push('"');
    }
    let forwarded = match prior(headers, &header::FORWARDED) {
        Some(p) => format!("{p}, {this_hop}"),
        None => this_hop,
    };
    let proto = if trusted {
        headers.get(&X_FORWARDED_PROTO).cloned()
    } else {
        None
    };
    let fwd_host = if trusted {
        headers.get(&X_FORWARDED_HOST).cloned()
    } else {
        None
    };
    for (name, value) in [
        (X_FORWARDED_FOR, Some(xff)),
        (header::FORWARDED, Some(forwarded)),
    ] {
        if let Some(Ok(v)) = value.map(HeaderValue::try_from) {
            headers.insert(name, v);
        }
    }
    headers.insert(
        X_FORWARDED_PROTO,
        proto.unwrap_or(HeaderValue::from_static(client.proto)),
    );
    match fwd_host.or_else(|| host.and_then(|h| HeaderValue::from_str(h).ok())) {
        Some(h) => {
            headers.insert(X_FORWARDED_HOST, h);
        }
        None => {
            headers.remove(X_FORWARDED_HOST);
        }
    }
}

/// The URI of the try on `origin` for `path_and_query`.
pub fn upstream_uri(origin: &Uri, path_and_query: &str) -> Result<Uri, http::Error> {
    let mut parts = uri::Parts::default();
    parts.scheme = origin.scheme().cloned();
    parts.authority = origin.authority().cloned();
    parts.path_and_query = Some(path_and_query.parse::<uri::PathAndQuery>()?);
    Ok(Uri::from_parts(parts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_go() {
        let mut h = headers(&[
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut h);
        let names: Vec<_> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["traceparent", "x-kept"]);
    }

    #[test]
    fn an_upgrade_keeps_what_the_upstream_needs_to_switch() {
        let mut h = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_replaced() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let spoofed = || headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=1.2.3.4")]);
        let mut h = spoofed();
        let c = Client {
            peer: "192.0.2.7".parse().unwrap(),
            trusted: &trusted,
            proto: "http",
        };
        set_forwarded(&mut h, &c, Some("api.example.com"));
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(
            h["forwarded"],
            "for=192.0.2.7;proto=http;host=\"api.example.com\""
        );
        assert_eq!(h["x-forwarded-host"], "api.example.com");
        assert_eq!(h["x-forwarded-proto"], "http");

        let mut h = spoofed();
        let c = Client {
            peer: "10.1.1.1".parse().unwrap(),
            trusted: &trusted,
            proto: "http",
        };
        set_forwarded(&mut h, &c, None);
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.1.1.1");
        assert_eq!(h["forwarded"], "for=1.2.3.4, for=10.1.1.1;proto=http");
    }

    #[test]
    fn the_upstream_uri_is_the_origin_and_the_path() {
        let origin: Uri = "https://api.internal:8443".parse().unwrap();
        assert_eq!(
            upstream_uri(&origin, "/v1/x?y=1").unwrap().to_string(),
            "https://api.internal:8443/v1/x?y=1"
        );
    }
}

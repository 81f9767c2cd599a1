//! What the Layer reads of a request to make the engine's subject: the attributes
//! forward-auth reads, under the same names, so one policy serves both doors.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{AUTHORIZATION, HOST};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};
use tollgate_core::Subject;
use tollgate_core::policy::matcher::Cidr;
use tollgate_core::subject::{Attr, SubjectError};
use tollgate_engine::door::forwarded_ip;

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The user a request is made by, for the `user` attribute: a request extension that an
/// authentication layer outside the Tollgate layer sets.
///
/// ```
/// # use tollgate_tower::TollgateUser;
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(TollgateUser("alice".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TollgateUser(pub String);

/// The address of the connection's peer, as a request extension, for servers that do not
/// set axum's `ConnectInfo<SocketAddr>` or tonic's `TcpConnectInfo` (a hand-made hyper
/// server, a proxy). The first of the three found counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// An attribute computed from the request's head by the application.
pub(crate) type AttrFn = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

/// Which attributes are read, and how.
#[derive(Clone)]
pub(crate) struct Extract {
    pub(crate) client_ip: bool,
    pub(crate) trusted: Vec<Cidr>,
    pub(crate) method: bool,
    pub(crate) path: bool,
    pub(crate) host: Option<Attr>,
    pub(crate) headers: Vec<(HeaderName, Attr)>,
    pub(crate) user_extension: bool,
    pub(crate) api_key: bool,
    pub(crate) computed: Vec<(Attr, AttrFn)>,
}

impl Default for Extract {
    fn default() -> Self {
        Extract {
            client_ip: true,
            trusted: Vec::new(),
            method: true,
            path: true,
            host: None,
            headers: Vec::new(),
            user_extension: true,
            api_key: true,
            computed: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Extract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extract")
            .field("client_ip", &self.client_ip)
            .field("trusted", &self.trusted)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("host", &self.host)
            .field("headers", &self.headers)
            .field("user_extension", &self.user_extension)
            .field("api_key", &self.api_key)
            .field(
                "computed",
                &self.computed.iter().map(|(a, _)| a).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A header's trimmed value, when text and not empty.
fn text(v: &HeaderValue) -> Option<&str> {
    v.to_str().ok().map(str::trim).filter(|v| !v.is_empty())
}

/// The connection's peer, from whichever server put it in the extensions.
fn peer(ext: &http::Extensions) -> Option<IpAddr> {
    if let Some(PeerAddr(addr)) = ext.get::<PeerAddr>() {
        return Some(addr.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        ext.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(addr.ip());
    }
    #[cfg(feature = "tonic")]
    if let Some(addr) = ext
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|c| c.remote_addr())
    {
        return Some(addr.ip());
    }
    None
}

/// The host a request names, without its port: the URI's authority (HTTP/2's
/// `:authority`), else the `Host` header.
fn host(parts: &Parts) -> Option<&str> {
    if let Some(h) = parts.uri.host() {
        return Some(h);
    }
    let h = parts.headers.get(HOST).and_then(text)?;
    if let Some(rest) = h.strip_prefix('[') {
        // An IPv6 literal keeps its brackets, as a URI's host does.
        let end = rest.find(']')?;
        return h.get(..end.checked_add(2)?);
    }
    Some(match h.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => h,
    })
}

/// The API key presented: `X-Api-Key`, else a bearer token of `Authorization`.
pub(crate) fn presented_key(h: &HeaderMap) -> Option<&str> {
    h.get(X_API_KEY).and_then(text).or_else(|| {
        h.get(AUTHORIZATION)
            .and_then(text)
            .and_then(|a| {
                a.strip_prefix("Bearer ")
                    .or_else(|| a.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|k| !k.is_empty())
    })
}

impl Extract {
    /// The subject of the request whose head is `parts`.
    pub(crate) fn subject(&self, parts: &Parts) -> Result<Subject, SubjectError> {
        let mut s = Subject::new();
        if self.client_ip
            && let Some(peer) = peer(&parts.extensions)
        {
            let xff = parts
                .headers
                .get_all(X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok());
            let real_ip = parts.headers.get(X_REAL_IP).and_then(text);
            s.set_ip(forwarded_ip(&self.trusted, peer, xff, real_ip));
        }
        if self.method {
            s.set_attr(&Attr::Method, parts.method.as_str())?;
        }
        let path = parts.uri.path();
        if self.path && !path.is_empty() {
            s.set_attr(&Attr::Path, path)?;
        }
        if let Some(attr) = &self.host
            && let Some(h) = host(parts)
        {
            s.set_attr(attr, h)?;
        }
        for (name, attr) in &self.headers {
            if let Some(v) = parts.headers.get(name).and_then(text) {
                s.set_attr(attr, v)?;
            }
        }
        if self.user_extension
            && let Some(TollgateUser(user)) = parts.extensions.get::<TollgateUser>()
        {
            s.set_attr(&Attr::User, user)?;
        }
        for (attr, f) in &self.computed {
            if let Some(v) = f(parts) {
                s.set_attr(attr, &v)?;
            }
        }
        Ok(s)
    }

    /// The API key the request presents, when keys are read.
    pub(crate) fn api_key<'p>(&self, parts: &'p Parts) -> Option<&'p str> {
        if self.api_key {
            presented_key(&parts.headers)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parts(req: http::request::Builder) -> Parts {
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_host_drops_its_port_and_keeps_ipv6_brackets() {
        let p = |h: &str| parts(http::Request::builder().uri("/").header(HOST, h));
        assert_eq!(host(&p("example.com:8080")), Some("example.com"));
        assert_eq!(host(&p("example.com")), Some("example.com"));
        assert_eq!(host(&p("[::1]:80")), Some("[::1]"));
        let absolute = parts(http::Request::builder().uri("http://api.test:1/x"));
        assert_eq!(host(&absolute), Some("api.test"));
    }

    #[test]
    fn a_key_comes_from_x_api_key_or_a_bearer_token() {
        let h = |name: &str, v: &str| {
            let mut m = HeaderMap::new();
            m.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
            m
        };
        assert_eq!(presented_key(&h("x-api-key", " k1 ")), Some("k1"));
        assert_eq!(presented_key(&h("authorization", "Bearer k2")), Some("k2"));
        assert_eq!(presented_key(&h("authorization", "Basic a2V5")), None);
        assert_eq!(presented_key(&h("authorization", "Bearer ")), None);
    }
}

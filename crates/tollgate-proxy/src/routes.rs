//! Choosing a request's route: routes for its host before routes for any host, and among
//! them the longest path prefix that ends on a segment boundary.

use crate::config::RouteConfig;

/// The routes of a proxy, searched per request.
#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<RouteConfig>,
}

impl RouteTable {
    /// A table of `routes`.
    pub fn new(routes: Vec<RouteConfig>) -> Self {
        RouteTable { routes }
    }

    /// The route, and its index, for a request to `host` (without port, any case) and
    /// `path`.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<(usize, &RouteConfig)> {
        let best = |want_host: bool| {
            self.routes
                .iter()
                .enumerate()
                .filter(|(_, r)| match (&r.host, host) {
                    (Some(rh), Some(h)) => want_host && rh.eq_ignore_ascii_case(h),
                    (None, _) => !want_host,
                    (Some(_), None) => false,
                })
                .filter(|(_, r)| prefix_matches(&r.path_prefix, path))
                .max_by_key(|(i, r)| (r.path_prefix.len(), std::cmp::Reverse(*i)))
        };
        best(true).or_else(|| best(false))
    }

    /// The longest `total_timeout` of any route: no send through the table outlasts it.
    pub fn longest_total_timeout(&self) -> std::time::Duration {
        self.routes
            .iter()
            .map(|r| r.total_timeout)
            .max()
            .unwrap_or_default()
    }
}

/// Whether `prefix` covers `path`: `/v1` covers `/v1` and `/v1/x` but not `/v10`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// `path` without the route's `prefix`, still starting with `/`.
pub fn strip(prefix: &str, path_and_query: &str) -> String {
    let rest = path_and_query
        .strip_prefix(prefix.trim_end_matches('/'))
        .unwrap_or(path_and_query);
    if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RetryConfig;
    use std::time::Duration;

    fn route(host: Option<&str>, prefix: &str, upstream: &str) -> RouteConfig {
        RouteConfig {
            host: host.map(str::to_owned),
            path_prefix: prefix.to_owned(),
            strip_prefix: false,
            upstream: upstream.to_owned(),
            remove_headers: Vec::new(),
            retry: RetryConfig::default(),
            try_timeout: Duration::from_secs(1),
            dead_letter: crate::config::DeadLetterConfig::default(),
            total_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_host_then_the_longest_prefix_wins() {
        let t = RouteTable::new(vec![
            route(None, "/", "any"),
            route(None, "/v1", "v1"),
            route(None, "/v1/keys", "keys"),
            route(Some("api.example.com"), "/", "api"),
        ]);
        let up = |host, path| t.find(host, path).map(|(_, r)| r.upstream.as_str());
        assert_eq!(up(None, "/v1/keys/7"), Some("keys"));
        assert_eq!(up(None, "/v1"), Some("v1"));
        assert_eq!(up(None, "/v10"), Some("any"));
        assert_eq!(up(Some("API.example.com"), "/v1/keys"), Some("api"));
        assert_eq!(up(Some("other"), "/v1/x"), Some("v1"));
    }

    #[test]
    fn a_table_without_a_catch_all_finds_nothing_elsewhere() {
        let t = RouteTable::new(vec![route(None, "/v1/", "v1")]);
        assert!(t.find(None, "/v2").is_none());
        assert!(t.find(None, "/v1/x").is_some());
    }

    #[test]
    fn stripping_keeps_a_leading_slash_and_the_query() {
        assert_eq!(strip("/api", "/api/users?x=1"), "/users?x=1");
        assert_eq!(strip("/api/", "/api/users"), "/users");
        assert_eq!(strip("/api", "/api"), "/");
        assert_eq!(strip("/api", "/api?x=1"), "/?x=1");
    }
}

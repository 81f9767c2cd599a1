//! The configuration in force with every secret replaced, for showing.

use serde_json::Value;

/// What a hidden value reads as.
pub const HIDDEN: &str = "<redacted>";

/// Whether a setting named `name` holds a secret: passwords, tokens, secrets, keys that
/// authenticate, and URLs that are themselves credentials (Slack's) or may carry them.
fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["secret", "password", "token", "routing_key", "credential"]
        .iter()
        .any(|s| n.contains(s))
        || n == "url"
        || n == "urls"
}

/// `doc` with the values of secret settings replaced by [`HIDDEN`]; a URL keeps its scheme
/// and host so that where it points stays readable.
pub fn redact(doc: &Value) -> Value {
    match doc {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let shown = if is_secret(k) { hide(k, v) } else { redact(v) };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

fn hide(name: &str, v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(|i| hide(name, i)).collect()),
        Value::String(s) if name.starts_with("url") => Value::String(host_only(s)),
        Value::Null => Value::Null,
        _ => Value::String(HIDDEN.into()),
    }
}

/// `scheme://host:port/<redacted>`: the path, query and user info of a URL may be its
/// credential.
fn host_only(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return HIDDEN.into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    format!("{scheme}://{host}/{HIDDEN}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_hidden_and_the_rest_is_kept() {
        let doc = json!({
            "database": { "url": "postgres://tollgate:pw@db:5432/tollgate", "cache_ttl": "5s" },
            "store": { "kind": "redis", "urls": ["redis://:pw@r1:6379/0"] },
            "admin": { "tokens": [{ "token_hash": "abc", "role": "admin" }] },
            "alerts": { "channels": {
                "ops": { "type": "webhook", "url": "https://h.example/x?sig=1", "secret": "whsec_x" },
                "pd": { "type": "pagerduty", "routing_key": "r0ut1ng" },
                "mail": { "type": "email", "host": "smtp", "password": "pw", "username": "u" },
            } },
            "rules": [{ "name": "per-ip", "limit": 10 }],
        });
        let shown = redact(&doc);
        let text = shown.to_string();
        for secret in ["pw", "whsec_x", "r0ut1ng", "abc", "sig=1"] {
            assert!(!text.contains(secret), "{secret} shown in {text}");
        }
        assert_eq!(shown["database"]["url"], "postgres://db:5432/<redacted>");
        assert_eq!(shown["store"]["urls"][0], "redis://r1:6379/<redacted>");
        assert_eq!(shown["database"]["cache_ttl"], "5s");
        assert_eq!(shown["alerts"]["channels"]["mail"]["username"], "u");
        assert_eq!(shown["rules"][0]["limit"], 10);
    }
}

//! `admin.oidc`: the dashboard's sign-in through an OpenID provider (authorization code flow
//! with PKCE), and how the ID token's claims map to roles.

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};
use tollgate_core::policy::parse::{Errors, as_map, check_fields, get_str, join};
use tollgate_core::policy::settings::Setting;

use super::admin::{Role, strings};
use super::duration::within;
use super::secret::{env_secret, read_text_secret};

/// The path the provider sends the browser back to; `redirect_url` must end with it.
pub const CALLBACK_PATH: &str = "/ui/auth/oidc/callback";

/// The environment variable that holds the client secret (wins over `client_secret_file`).
pub const CLIENT_SECRET_ENV: &str = "TOLLGATE_OIDC_CLIENT_SECRET";

/// Which claim values give which role.
#[derive(Debug, Clone, Default)]
pub struct RoleMapping {
    /// The claim read: a string or a list of strings (`groups`, `email`, `roles`, …).
    pub claim: String,
    /// Values that make someone an admin.
    pub admin: Vec<String>,
    /// Values that make someone an operator.
    pub operator: Vec<String>,
    /// Values that make someone a viewer.
    pub viewer: Vec<String>,
}

impl RoleMapping {
    /// The highest role any of `values` gives; `None` when none does (nobody has a role by
    /// default).
    pub fn role_of<'a>(&self, values: impl IntoIterator<Item = &'a str>) -> Option<Role> {
        let mut best = None;
        for v in values {
            for (role, list) in [
                (Role::Admin, &self.admin),
                (Role::Operator, &self.operator),
                (Role::Viewer, &self.viewer),
            ] {
                if list.iter().any(|l| l == v) {
                    best = best.max(Some(role));
                }
            }
        }
        best
    }
}

/// How the dashboard signs people in through an OpenID provider.
#[derive(Clone)]
pub struct OidcSettings {
    /// Shown on the button: "Sign in with {name}".
    pub name: String,
    /// The issuer; its discovery document is at `/.well-known/openid-configuration`.
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// Where the provider sends the browser back to (ends with [`CALLBACK_PATH`]).
    pub redirect_url: String,
    /// The scopes asked for (`openid` always among them).
    pub scopes: Vec<String>,
    /// Claims to roles.
    pub roles: RoleMapping,
    /// How long a dashboard session lasts.
    pub session_ttl: Duration,
    /// Clock skew allowed on the ID token's `exp` and `iat`.
    pub leeway: Duration,
}

impl OidcSettings {
    /// Whether the dashboard is served over TLS (its cookies are then `Secure`).
    pub fn secure(&self) -> bool {
        self.redirect_url.starts_with("https://")
    }
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("OidcSettings")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .field("scopes", &self.scopes)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// The fields of `admin.oidc`.
pub(crate) const FIELDS: &[Setting] = &[
    Setting::new(
        "name",
        "string",
        "The provider's name, on the sign-in page's button (\"Sign in with …\").",
    )
    .default("`OpenID Connect`"),
    Setting::new(
        "issuer",
        "URL",
        "The issuer: its discovery document is read from `/.well-known/openid-configuration` \
         under it, and ID tokens must carry it as `iss`.",
    )
    .range("`https://…` (`http://` for a provider on this machine); required"),
    Setting::new(
        "client_id",
        "string",
        "The client id registered at the provider.",
    )
    .range("required"),
    Setting::new(
        "client_secret_file",
        "path",
        "A file holding the client secret, relative to the configuration's folder; \
         `TOLLGATE_OIDC_CLIENT_SECRET` wins over it. Sessions are signed with a key derived \
         from it, so every instance with the same secret accepts the same sessions.",
    )
    .range("one of the two required"),
    Setting::new(
        "redirect_url",
        "URL",
        "Where the provider sends the browser back to: the dashboard's public address \
         followed by `/ui/auth/oidc/callback`, registered at the provider. Over `https://`, \
         the dashboard's cookies are `Secure`.",
    )
    .range("ends with `/ui/auth/oidc/callback`; required"),
    Setting::new("scopes", "string or list", "The scopes asked for.")
        .default("`[openid, email, profile]`")
        .range("`openid` is always asked for"),
    Setting::new(
        "roles",
        "mapping",
        "Which values of an ID token claim give which role; nobody has a role by default.",
    )
    .range("required"),
    Setting::new(
        "session_ttl",
        "duration",
        "How long a dashboard session lasts.",
    )
    .default("`8h`")
    .range("1m to 7d"),
    Setting::new(
        "leeway",
        "duration",
        "Clock skew allowed on the ID token's `exp` and `iat`.",
    )
    .default("`30s`")
    .range("0s to 5m"),
];

/// The fields of `admin.oidc.roles`.
pub(crate) const ROLE_FIELDS: &[Setting] = &[
    Setting::new(
        "claim",
        "string",
        "The ID token claim read: a string (`email`) or a list of strings (`groups`).",
    )
    .default("`groups`"),
    Setting::new(
        "admin",
        "string or list",
        "Values of the claim that give `admin`.",
    )
    .default("none"),
    Setting::new(
        "operator",
        "string or list",
        "Values of the claim that give `operator`.",
    )
    .default("none"),
    Setting::new(
        "viewer",
        "string or list",
        "Values of the claim that give `viewer`.",
    )
    .default("none"),
];

fn required<'v>(m: &'v Map<String, Value>, field: &str, errs: &mut Errors) -> Option<&'v str> {
    let at = "admin.oidc";
    let v = get_str(m, field, at, errs);
    if v.is_none() && !m.contains_key(field) {
        errs.push(&join(at, field), "missing");
    }
    v
}

fn http_url(url: &str, at: &str, errs: &mut Errors) -> bool {
    let parsed = url::Url::parse(url);
    match parsed {
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => true,
        _ => {
            errs.push(at, format!("{url:?} is not an http(s) URL"));
            false
        }
    }
}

/// Reads `admin.oidc`.
pub fn parse(
    m: &Map<String, Value>,
    base: Option<&Path>,
    errs: &mut Errors,
) -> Option<OidcSettings> {
    let at = "admin.oidc";
    check_fields(m, at, FIELDS, errs);
    let name = get_str(m, "name", at, errs)
        .unwrap_or("OpenID Connect")
        .to_owned();
    let issuer = required(m, "issuer", errs)
        .filter(|u| http_url(u, "admin.oidc.issuer", errs))
        .map(|u| u.trim_end_matches('/').to_owned());
    let client_id = required(m, "client_id", errs).map(str::to_owned);
    let client_secret = match env_secret(CLIENT_SECRET_ENV) {
        Some(s) => Some(s),
        None => match get_str(m, "client_secret_file", at, errs) {
            Some(file) => read_text_secret(file, base, "admin.oidc.client_secret_file", errs),
            None => {
                errs.push(
                    "admin.oidc.client_secret_file",
                    format!("missing (or set {CLIENT_SECRET_ENV})"),
                );
                None
            }
        },
    };
    let redirect_url = required(m, "redirect_url", errs)
        .filter(|u| http_url(u, "admin.oidc.redirect_url", errs))
        .filter(|u| {
            let ok = url::Url::parse(u).is_ok_and(|p| p.path().ends_with(CALLBACK_PATH));
            if !ok {
                errs.push(
                    "admin.oidc.redirect_url",
                    format!("{u:?} must end with {CALLBACK_PATH}, where the dashboard takes the provider's answer"),
                );
            }
            ok
        })
        .map(str::to_owned);
    let mut scopes = m
        .get("scopes")
        .map(|v| match v {
            // Scopes as OAuth writes them: one string, separated by spaces.
            Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
            other => strings(other, "admin.oidc.scopes", errs),
        })
        .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    let roles = match m.get("roles") {
        None => {
            errs.push(
                "admin.oidc.roles",
                "missing: say which claim values give which role (nobody has one by default)",
            );
            None
        }
        Some(v) => as_map(v, "admin.oidc.roles", errs).map(|r| role_mapping(r, errs)),
    };
    let session_ttl = within(
        m,
        "session_ttl",
        at,
        (Duration::from_secs(60), Duration::from_secs(7 * 86_400)),
        Duration::from_secs(8 * 3_600),
        errs,
    );
    let leeway = within(
        m,
        "leeway",
        at,
        (Duration::ZERO, Duration::from_secs(300)),
        Duration::from_secs(30),
        errs,
    );
    Some(OidcSettings {
        name,
        issuer: issuer?,
        client_id: client_id?,
        client_secret: client_secret?,
        redirect_url: redirect_url?,
        scopes,
        roles: roles?,
        session_ttl,
        leeway,
    })
}

fn role_mapping(m: &Map<String, Value>, errs: &mut Errors) -> RoleMapping {
    let at = "admin.oidc.roles";
    check_fields(m, at, ROLE_FIELDS, errs);
    let claim = get_str(m, "claim", at, errs).unwrap_or("groups").to_owned();
    let list = |field: &str, errs: &mut Errors| {
        m.get(field)
            // Whitespace is not split here: a claim value may hold spaces.
            .map(|v| strings(v, &join(at, field), errs))
            .unwrap_or_default()
    };
    let mapping = RoleMapping {
        admin: list("admin", errs),
        operator: list("operator", errs),
        viewer: list("viewer", errs),
        claim,
    };
    if mapping.admin.is_empty() && mapping.operator.is_empty() && mapping.viewer.is_empty() {
        errs.push(
            at,
            "gives no role to anyone: list claim values under admin, operator or viewer",
        );
    }
    mapping
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> Vec<String> {
        let v: Value = serde_saphyr::from_str(yaml).unwrap();
        let mut errs = Errors::default();
        let _ = parse(v.as_object().unwrap(), None, &mut errs);
        match errs.finish(()) {
            Ok(()) => Vec::new(),
            Err(e) => e.0.into_iter().map(|e| e.path).collect(),
        }
    }

    #[test]
    fn errors_carry_their_path() {
        assert_eq!(
            errors(
                "issuer: \"idp.example\"\nredirect_url: \"https://t.example/ui/elsewhere\"\nroles: { claim: groups }\nleeway: 1h\nwhat: 1\n"
            ),
            vec![
                "admin.oidc.what",
                "admin.oidc.issuer",
                "admin.oidc.client_id",
                "admin.oidc.client_secret_file",
                "admin.oidc.redirect_url",
                "admin.oidc.roles",
                "admin.oidc.leeway",
            ]
        );
    }

    #[test]
    fn the_highest_role_a_value_gives_counts_and_none_is_given_by_default() {
        let m = RoleMapping {
            claim: "groups".into(),
            admin: vec!["ops".into()],
            operator: vec![],
            viewer: vec!["staff".into(), "ops".into()],
        };
        assert_eq!(m.role_of(["staff", "ops"]), Some(Role::Admin));
        assert_eq!(m.role_of(["staff"]), Some(Role::Viewer));
        assert_eq!(m.role_of(["guests"]), None);
        assert_eq!(m.role_of([]), None);
    }
}

//! Values the dashboard hands the browser in cookies and takes back: JSON, signed with
//! HMAC-SHA-256 under a key of their own purpose, so that a value made for one use (the
//! sign-in in progress) is never accepted for another (a session).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

/// Signs and checks cookie values.
#[derive(Clone)]
pub struct Sealer {
    key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

/// HMAC-SHA-256 of `parts` under `key`.
fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes keys of any length.
        Err(_) => unreachable!("HMAC rejected a key"),
    };
    for p in parts {
        m.update(p);
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        m.update(&[0]);
    }
    m.finalize().into_bytes().into()
}

impl Sealer {
    /// A sealer whose key is derived from `secret` and what names the sign-in (issuer and
    /// client id), so that every instance configured alike accepts the others' values.
    pub fn derive(secret: &[u8], context: &[&str]) -> Sealer {
        let mut parts: Vec<&[u8]> = vec![b"tollgate dashboard cookies v1"];
        parts.extend(context.iter().map(|c| c.as_bytes()));
        Sealer {
            key: mac(secret, &parts),
        }
    }

    /// `value` as a cookie value for `purpose`.
    pub fn seal<T: Serialize>(&self, purpose: &str, value: &T) -> String {
        let json = serde_json::to_vec(value).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(json);
        let tag = URL_SAFE_NO_PAD.encode(mac(&self.key, &[purpose.as_bytes(), body.as_bytes()]));
        format!("{body}.{tag}")
    }

    /// The value `sealed` holds, when it was sealed by this key for `purpose`.
    pub fn open<T: DeserializeOwned>(&self, purpose: &str, sealed: &str) -> Option<T> {
        let (body, tag) = sealed.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let want = mac(&self.key, &[purpose.as_bytes(), body.as_bytes()]);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&want[..], &tag[..])) {
            return None;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
    }

    /// A token bound to `id` for `purpose`, such as a session's CSRF token.
    pub fn token(&self, purpose: &str, id: &str) -> String {
        URL_SAFE_NO_PAD.encode(mac(&self.key, &[purpose.as_bytes(), id.as_bytes()]))
    }

    /// Whether `token` is the one [`Sealer::token`] makes for `id`, compared in constant time.
    pub fn check_token(&self, purpose: &str, id: &str, token: &str) -> bool {
        let want = self.token(purpose, id);
        bool::from(subtle::ConstantTimeEq::ct_eq(
            want.as_bytes(),
            token.as_bytes(),
        ))
    }
}

/// 256 random bits, base64url: session ids.
pub fn random_id() -> Option<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).ok()?;
    Some(URL_SAFE_NO_PAD.encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_with_its_key_and_purpose_and_untouched() {
        let a = Sealer::derive(b"secret", &["https://idp.example", "tollgate"]);
        let b = Sealer::derive(b"secret", &["https://idp.example", "other"]);
        let sealed = a.seal("session", &("alice", 3));
        assert_eq!(
            a.open::<(String, i32)>("session", &sealed),
            Some(("alice".into(), 3))
        );
        assert_eq!(a.open::<(String, i32)>("pending", &sealed), None);
        assert_eq!(b.open::<(String, i32)>("session", &sealed), None);
        let (body, tag) = sealed.split_once('.').unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(br#"["mallory",3]"#));
        assert_eq!(a.open::<(String, i32)>("session", &forged), None);
        assert_eq!(a.open::<(String, i32)>("session", body), None);
        let t = a.token("csrf", "id1");
        assert!(a.check_token("csrf", "id1", &t));
        assert!(!a.check_token("csrf", "id2", &t));
        assert!(!b.check_token("csrf", "id1", &t));
    }
}

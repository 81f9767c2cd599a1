//! Email over SMTP: a plain-text UTF-8 message with a Message-ID derived from the notice id.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, header::Header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};

use crate::notice::Notice;
use crate::{ChannelError, DeliveryError};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SmtpTls {
    /// Plain text throughout.
    None,
    /// STARTTLS when the server offers it, plain text otherwise.
    #[default]
    StartTlsWhenOffered,
    /// STARTTLS or nothing is sent.
    StartTlsRequired,
    /// TLS from the first byte (SMTPS, usually port 465).
    Implicit,
}

/// Where and how to send mail.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct EmailSettings {
    /// The SMTP server's host name (also the name its certificate must carry).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is secured.
    pub tls: SmtpTls,
    /// A PEM CA to trust instead of the system's roots (for a private relay).
    pub ca_file: Option<PathBuf>,
    /// The login, if the server wants one.
    pub username: Option<String>,
    /// The password for `username`.
    pub password: Option<String>,
    /// The sender, e.g. `Tollgate <alerts@example.com>`.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

impl fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

/// An email channel: validated settings.
#[derive(Debug, Clone)]
pub struct Email {
    pub(crate) settings: EmailSettings,
    pub(crate) from: Mailbox,
    pub(crate) to: Vec<Mailbox>,
    pub(crate) ca_pem: Option<Vec<u8>>,
}

/// The key under which a notifier keeps one transport (and its connection pool).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct TransportKey {
    settings: EmailSettings,
}

fn mailbox(address: &str) -> Result<Mailbox, ChannelError> {
    address
        .parse()
        .map_err(|e: lettre::address::AddressError| ChannelError::Address {
            address: address.to_owned(),
            reason: e.to_string(),
        })
}

impl Email {
    /// Validates the settings: a host, parseable addresses, at least one recipient, a
    /// readable CA when named.
    pub fn new(settings: EmailSettings) -> Result<Self, ChannelError> {
        if settings.host.trim().is_empty() {
            return Err(ChannelError::Invalid("SMTP host is empty".into()));
        }
        if settings.password.is_some() && settings.username.is_none() {
            return Err(ChannelError::Invalid(
                "SMTP password without a username".into(),
            ));
        }
        let from = mailbox(&settings.from)?;
        let to = settings
            .to
            .iter()
            .map(|a| mailbox(a))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(ChannelError::Invalid("no email recipient".into()));
        }
        let ca_pem = match &settings.ca_file {
            None => None,
            Some(path) => {
                let err = |reason: String| ChannelError::CaFile {
                    path: path.display().to_string(),
                    reason,
                };
                let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
                Certificate::from_pem(&pem).map_err(|e| err(e.to_string()))?;
                Some(pem)
            }
        };
        Ok(Email {
            settings,
            from,
            to,
            ca_pem,
        })
    }

    pub(crate) fn key(&self) -> TransportKey {
        TransportKey {
            settings: self.settings.clone(),
        }
    }

    /// Builds the SMTP transport for these settings.
    pub(crate) fn transport(
        &self,
        timeout: Duration,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
        let s = &self.settings;
        let params = || -> Result<TlsParameters, DeliveryError> {
            let mut builder = TlsParameters::builder(s.host.clone());
            if let Some(pem) = &self.ca_pem {
                let ca = Certificate::from_pem(pem)
                    .map_err(|e| DeliveryError::permanent(format!("CA file: {e}")))?;
                builder = builder
                    .certificate_store(CertificateStore::None)
                    .add_root_certificate(ca);
            }
            builder
                .build_rustls()
                .map_err(|e| DeliveryError::permanent(format!("TLS setup: {e}")))
        };
        let tls = match s.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTlsWhenOffered => Tls::Opportunistic(params()?),
            SmtpTls::StartTlsRequired => Tls::Required(params()?),
            SmtpTls::Implicit => Tls::Wrapper(params()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
            .port(s.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(user) = &s.username {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                s.password.clone().unwrap_or_default(),
            ));
        }
        Ok(builder.build())
    }

    /// The message for `notice`.
    pub(crate) fn message(&self, notice: &Notice) -> Result<Message, DeliveryError> {
        let subject = notice
            .subject
            .clone()
            .unwrap_or_else(|| notice.summary.clone());
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(message_id(&notice.id, self.from.email.domain())))
            .header(AutoSubmitted)
            .header(ContentType::TEXT_PLAIN)
            .date_now();
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .body(notice.body.clone())
            .map_err(|e| DeliveryError::permanent(format!("building the message: {e}")))
    }
}

/// `<id@domain>` when the id is a plain token, else a hash of it, so the same notice always
/// gets the same Message-ID and a receiver can drop the duplicate of a retry.
pub(crate) fn message_id(id: &str, domain: &str) -> String {
    let plain = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let local = if plain {
        id.to_owned()
    } else {
        URL_SAFE_NO_PAD.encode(Sha256::digest(id.as_bytes()))
    };
    format!("<{local}.tollgate@{domain}>")
}

/// `Auto-Submitted: auto-generated` (RFC 3834), so auto-responders stay quiet.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// SMTP failures: transient (4xx) replies, connection and network failures, timeouts are
/// retryable; permanent (5xx) replies, TLS failures (a certificate not trusted included) and
/// refused settings are not, since only a change of settings mends them.
pub(crate) fn classify(err: &lettre::transport::smtp::Error) -> DeliveryError {
    let reason = format!("email: {}", crate::retry::chain(err));
    if err.is_permanent() || err.is_tls() || err.is_client() || caused_by_tls(err) {
        DeliveryError::permanent(reason)
    } else {
        DeliveryError::transient(reason)
    }
}

/// Whether a rustls error (such as an untrusted certificate) is among the causes, which lettre
/// reports as a connection error.
fn caused_by_tls(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        current = e.source();
    }
    false
}

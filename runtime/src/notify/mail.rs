//! The built-in email channel: lettre over SMTP, configured by one URL in lettre's form
//! (`smtp://127.0.0.1:2525` for a plain loopback relay, `smtp://user:pass@host:587?tls=required`
//! for STARTTLS, `smtps://user:pass@host` for implicit TLS), with pooled connections. A message
//! goes out as text and HTML alternatives with a `Message-ID` made from its outbox id, so a
//! retry after a crash carries the same id and a receiver can drop the copy.

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::templates::Rendered;
use crate::plugins::Secret;

/// Pooled SMTP connections, and so messages sent at once.
pub const CONNECTIONS: usize = 8;

/// How a delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Worth trying again later: a 4xx reply, a refused or dropped connection, a timeout.
    #[error("{0}")]
    Transient(String),
    /// Trying again cannot help: a 5xx reply, an address that cannot be written.
    #[error("{0}")]
    Permanent(String),
}

/// Sends mail through one SMTP server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

impl std::fmt::Debug for Mailer {
    // The transport holds the URL's credentials: only the sender is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for the SMTP server at `url`, sending as `from` (`Penpal <no-reply@example.com>`).
    /// Each SMTP command waits at most `timeout`.
    pub fn new(url: &Secret, from: &str, timeout: std::time::Duration) -> anyhow::Result<Mailer> {
        let from: Mailbox = from.parse().map_err(|e| {
            anyhow::anyhow!("PENPAL_MAIL_FROM `{from}` is not an address ({e}): write it as `Penpal <no-reply@example.com>`")
        })?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            // The URL may hold a password: the error must not repeat it.
            .map_err(|e| {
                anyhow::anyhow!(
                    "PENPAL_SMTP_URL is not an SMTP URL ({}): write it as smtp://host:port or smtps://user:password@host",
                    crate::http::redact_secrets(&e.to_string())
                )
            })?
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(CONNECTIONS as u32))
            .build();
        let domain = from.email.domain().to_string();
        Ok(Mailer {
            transport,
            from,
            domain,
        })
    }

    /// Sends `message` to `to`, as outbox message `id`; `unsubscribe` (a one-click URL) is
    /// set on mail a learner may opt out of, never on security mail.
    pub async fn send(
        &self,
        id: &str,
        to: &str,
        message: &Rendered,
        unsubscribe: Option<&str>,
    ) -> Result<(), Failure> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| Failure::Permanent(format!("the address cannot be written: {e}")))?;
        let mut builder = Message::builder()
            .message_id(Some(format!("<{id}@{}>", self.domain)))
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone());
        if let Some(url) = unsubscribe {
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".into(),
                ));
        }
        let email = builder
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                message.html.clone(),
            ))
            .map_err(|e| Failure::Permanent(format!("the message cannot be built: {e}")))?;
        self.transport.send(email).await.map(|_| ()).map_err(|e| {
            let what = e.to_string();
            if e.is_permanent() {
                Failure::Permanent(what)
            } else {
                Failure::Transient(what)
            }
        })
    }
}

//! Outgoing e-mail through the configured SMTP relay (lettre); used for password resets.

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::SmtpConfig;

/// Sends e-mail through one relay.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// A mailer for `config`, or `None` when no relay is configured. The configuration was
    /// validated at start; a relay that cannot be built is logged and left out.
    pub fn from_config(config: &SmtpConfig) -> Option<Self> {
        if config.url.is_empty() {
            return None;
        }
        let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.url) {
            Ok(builder) => builder.build(),
            Err(e) => {
                tracing::error!(error = %e, "smtp.url cannot be used; e-mail is disabled");
                return None;
            }
        };
        let from = config.from.parse().ok()?;
        Some(Self { transport, from })
    }

    /// Send a plain-text message.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .body(body)
            .map_err(|e| e.to_string())?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

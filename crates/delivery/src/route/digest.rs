//! The daily digest: informational alerts collected in the outbox until `send_at` (local
//! time in the policy's zone) and sent as one email over SMTP (lettre).

use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{DeliveryError, Message, Receipt};
use plumbline_policy::matcher::parse_clock_time;

#[derive(Clone)]
pub struct Digest {
    pub send_at: jiff::civil::Time,
    smtp_url: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject: String,
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The SMTP URL may hold a password.
        f.debug_struct("Digest")
            .field("send_at", &self.send_at)
            .field("to", &self.to)
            .finish()
    }
}

impl Digest {
    pub fn new(
        smtp_url: &str,
        from: &str,
        to: &[String],
        send_at: &str,
        subject: &str,
    ) -> Result<Digest, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("digest `from` `{from}` is not an address: {e}"))?;
        let to: Vec<Mailbox> = to
            .iter()
            .flat_map(|t| t.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                t.parse()
                    .map_err(|e| format!("digest recipient `{t}` is not an address: {e}"))
            })
            .collect::<Result<_, _>>()?;
        if to.is_empty() {
            return Err("digest has no recipients (`to` empty)".into());
        }
        // Checked here so a bad URL disables the destination at start, not at 08:00.
        AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| format!("digest smtp_url is not usable: {e}"))?;
        Ok(Digest {
            send_at: parse_clock_time(send_at)?,
            smtp_url: smtp_url.to_string(),
            from,
            to,
            subject: subject.to_string(),
        })
    }

    /// The email for these outbox entries (oldest first).
    pub fn render(&self, items: &[(u64, Message)]) -> String {
        let mut body = format!(
            "{} informational alert(s) since the last digest.\n\n",
            items.len()
        );
        for (_, m) in items {
            body.push_str(&format!("== {}\n", m.headline()));
            body.push_str(&m.text());
            body.push('\n');
        }
        body
    }

    pub async fn send(&self, items: &[(u64, Message)]) -> Result<Receipt, DeliveryError> {
        let first = items.first().map(|x| x.0).unwrap_or(0);
        let last = items.last().map(|x| x.0).unwrap_or(0);
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .subject(format!("{} ({} alerts)", self.subject, items.len()))
            // Stable per batch: a resend after a lost acknowledgement threads as the same mail.
            .message_id(Some(format!("<digest-{first}-{last}@plumbline>")))
            .header(ContentType::TEXT_PLAIN);
        for t in &self.to {
            b = b.to(t.clone());
        }
        let email = b
            .body(self.render(items))
            .map_err(|e| DeliveryError::Rejected(format!("cannot build the digest email: {e}")))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&self.smtp_url)
            .map_err(|e| DeliveryError::Rejected(format!("smtp_url: {e}")))?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        match transport.send(email).await {
            Ok(resp) => Ok(format!(
                "smtp {}",
                resp.message().collect::<Vec<_>>().join(" ")
            )),
            Err(e) if e.is_permanent() => Err(DeliveryError::Rejected(format!("smtp: {e}"))),
            Err(e) => Err(DeliveryError::retry(format!("smtp: {e}"))),
        }
    }
}

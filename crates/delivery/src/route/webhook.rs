//! Generic webhook: `POST <url>` with the message as JSON, signed with HMAC-SHA256.
//!
//! Headers: `X-Plumbline-Delivery: <id>` (the same on every retry, so a receiver can drop
//! repeats), `X-Plumbline-Timestamp: <unix seconds>` and
//! `X-Plumbline-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//! Signing the timestamp with the body lets a receiver refuse replays of old deliveries.

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::{check_response, DeliveryError, Message, Receipt};

#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    pub secret: String,
    pub http: reqwest::Client,
}

pub const SIGNATURE_HEADER: &str = "x-plumbline-signature";
pub const TIMESTAMP_HEADER: &str = "x-plumbline-timestamp";
pub const DELIVERY_HEADER: &str = "x-plumbline-delivery";

/// `sha256=<hex>` over `"<timestamp>.<body>"`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Webhook {
    pub async fn send(&self, delivery: u64, m: &Message) -> Result<Receipt, DeliveryError> {
        let event = match m.kind {
            super::MessageKind::Alert => "alert.notify",
            super::MessageKind::FollowUp => "alert.follow_up",
            super::MessageKind::Resolve => "alert.resolve",
        };
        let body = serde_json::to_vec(&json!({
            "type": event,
            "delivery_id": delivery.to_string(),
            "message": m,
        }))
        .expect("messages serialise");
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        let resp = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(DELIVERY_HEADER, delivery.to_string())
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, sign(&self.secret, ts, &body))
            .body(body)
            .send()
            .await?;
        check_response(resp)
            .await
            .map(|_| format!("delivery {delivery}"))
    }
}

//! Slack incoming webhook: `POST <url>` with `text` (fallback) and Block Kit `blocks`.
//! Slack answers `200 ok`; `400 invalid_payload`, `403`, `404 no_service`, `410
//! channel_is_archived` are permanent, `429` and `5xx` are retried.

use serde_json::{json, Value};

use super::{check_response, DeliveryError, Message, Receipt};

#[derive(Debug, Clone)]
pub struct Slack {
    pub url: String,
    pub http: reqwest::Client,
}

impl Slack {
    pub async fn send(&self, m: &Message) -> Result<Receipt, DeliveryError> {
        let resp = self.http.post(&self.url).json(&payload(m)).send().await?;
        check_response(resp).await.map(|_| "ok".to_string())
    }
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped in text we did not write.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn payload(m: &Message) -> Value {
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Severity*\n{} ({})", m.severity, super::severity_label(m.severity))}),
        json!({"type": "mrkdwn", "text": format!("*Signals*\n{}", esc(&m.signals.join(", ")))}),
    ];
    if !m.systems.is_empty() {
        fields.push(
            json!({"type": "mrkdwn", "text": format!("*Systems*\n{}", esc(&m.systems.join(", ")))}),
        );
    }
    if !m.actors.is_empty() {
        fields.push(
            json!({"type": "mrkdwn", "text": format!("*Actors*\n{}", esc(&m.actors.join(", ")))}),
        );
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&m.headline(), 150)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&esc(&m.summary), 3000)}}),
        json!({"type": "section", "fields": fields}),
    ];
    let mut context: Vec<String> = m
        .notes
        .iter()
        .map(|n| format!("Policy: {}", esc(n)))
        .collect();
    context.extend(m.actions.iter().map(|a| {
        format!(
            "Response action `{}` on {}: {}",
            a.action,
            esc(&a.target),
            a.state
        )
    }));
    if !context.is_empty() {
        blocks.push(json!({"type": "context", "elements": context.iter().take(10).map(|c| json!({"type": "mrkdwn", "text": truncate(c, 3000)})).collect::<Vec<_>>()}));
    }
    if let Some(ask) = m.ask() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*", esc(&ask))}}));
    }
    blocks.push(json!({"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Open in Plumbline"}, "url": m.review_url}
    ]}));
    json!({
        "text": format!("{} – {}", m.headline(), m.review_url),
        "blocks": blocks,
    })
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

//! Microsoft Teams incoming webhook (Workflows "When a Teams webhook request is received",
//! or a legacy connector): a `message` with one Adaptive Card attachment. Teams answers
//! `200`/`202`.

use serde_json::{json, Value};

use super::{check_response, DeliveryError, Message, Receipt};

#[derive(Debug, Clone)]
pub struct Teams {
    pub url: String,
    pub http: reqwest::Client,
}

impl Teams {
    pub async fn send(&self, m: &Message) -> Result<Receipt, DeliveryError> {
        let resp = self.http.post(&self.url).json(&payload(m)).send().await?;
        check_response(resp).await.map(|_| "accepted".to_string())
    }
}

pub fn payload(m: &Message) -> Value {
    let color = match m.severity {
        3 => "Attention",
        2 => "Warning",
        _ => "Default",
    };
    let mut facts = vec![
        json!({"title": "Severity", "value": format!("{} ({})", m.severity, super::severity_label(m.severity))}),
        json!({"title": "Signals", "value": m.signals.join(", ")}),
    ];
    if !m.systems.is_empty() {
        facts.push(json!({"title": "Systems", "value": m.systems.join(", ")}));
    }
    if !m.actors.is_empty() {
        facts.push(json!({"title": "Actors", "value": m.actors.join(", ")}));
    }
    let mut body = vec![
        json!({"type": "TextBlock", "text": m.headline(), "weight": "Bolder", "size": "Medium", "color": color, "wrap": true}),
        json!({"type": "TextBlock", "text": m.summary, "wrap": true}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    for n in &m.notes {
        body.push(json!({"type": "TextBlock", "text": format!("Policy: {n}"), "isSubtle": true, "wrap": true}));
    }
    for a in &m.actions {
        body.push(json!({"type": "TextBlock", "text": format!("Response action {} on {}: {}", a.action, a.target, a.state), "wrap": true}));
    }
    if let Some(ask) = m.ask() {
        body.push(json!({"type": "TextBlock", "text": ask, "weight": "Bolder", "wrap": true}));
    }
    json!({
        "type": "message",
        "summary": m.headline(),
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": [{"type": "Action.OpenUrl", "title": "Open in Plumbline", "url": m.review_url}],
            }
        }]
    })
}

//! PagerDuty Events API v2: `POST /v2/enqueue` with `event_action` `trigger` or `resolve`
//! and a `dedup_key` per alert, so a repeated trigger updates the same incident and the
//! resolve closes it. PagerDuty answers `202 {"status":"success","dedup_key":…}`; `400` is
//! a bad event, `429` and `5xx` are retried.

use serde_json::{json, Value};

use super::{check_response, DeliveryError, Message, MessageKind, Receipt};

#[derive(Debug, Clone)]
pub struct PagerDuty {
    pub url: String,
    pub routing_key: String,
    pub http: reqwest::Client,
}

fn pd_severity(s: u8) -> &'static str {
    match s {
        3 => "critical",
        2 => "warning",
        _ => "info",
    }
}

impl PagerDuty {
    pub fn event(&self, m: &Message) -> Value {
        if m.kind == MessageKind::Resolve {
            return json!({
                "routing_key": self.routing_key,
                "event_action": "resolve",
                "dedup_key": m.dedup_key,
            });
        }
        let summary: String = m.headline().chars().take(1024).collect();
        json!({
            "routing_key": self.routing_key,
            "event_action": "trigger",
            "dedup_key": m.dedup_key,
            "payload": {
                "summary": summary,
                "source": m.systems.first().cloned().unwrap_or_else(|| "plumbline".into()),
                "severity": pd_severity(m.severity),
                "component": m.systems.join(", "),
                "group": m.route,
                "class": m.signals.join(", "),
                "custom_details": {
                    "summary": m.summary,
                    "signals": m.signals,
                    "systems": m.systems,
                    "actors": m.actors,
                    "policy": m.notes,
                    "next_steps": m.next_steps,
                    "response_actions": m.actions,
                    "alert_id": m.alert_id,
                },
            },
            "client": "Plumbline",
            "client_url": m.review_url,
            "links": [{"href": m.review_url, "text": "Review in Plumbline"}],
        })
    }

    pub async fn send(&self, m: &Message) -> Result<Receipt, DeliveryError> {
        let resp = self
            .http
            .post(&self.url)
            .json(&self.event(m))
            .send()
            .await?;
        let body = check_response(resp).await?;
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        Ok(v["dedup_key"].as_str().unwrap_or(&m.dedup_key).to_string())
    }
}

//! Delivery: what a notification says ([`Message`]), one module per destination, and the
//! durable outbox that carries messages to them with retries.

pub mod digest;
pub mod dispatch;
pub mod jira;
pub mod linear;
pub mod outbox;
pub mod pagerduty;
pub mod relay;
pub mod slack;
pub mod teams;
pub mod webhook;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use plumbline_policy::model::DestinationConfig;

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A new alert, or one whose severity or signals changed.
    Alert,
    /// A scheduled break-glass follow-up that is due and not yet reviewed.
    FollowUp,
    /// The alert was resolved or suppressed (PagerDuty resolve).
    Resolve,
}

/// A response action offered with an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionOffer {
    pub id: String,
    pub action: String,
    pub target: String,
    /// "waiting for approval" or "automatic".
    pub state: String,
}

/// A rendered notification, snapshotted into the outbox when policy decides, so a retry
/// days later sends exactly what was decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub kind: MessageKind,
    pub alert_id: String,
    pub title: String,
    pub summary: String,
    /// Severity after policy (allow-lists, break-glass).
    pub severity: u8,
    /// Severity the detectors gave.
    pub detector_severity: u8,
    pub signals: Vec<String>,
    pub systems: Vec<String>,
    pub actors: Vec<String>,
    pub detectors: Vec<String>,
    pub event_count: usize,
    pub review_url: String,
    pub route: String,
    /// Policy's reasons (downgrades, break-glass, quiet hours) in reading order.
    pub notes: Vec<String>,
    pub next_steps: Vec<String>,
    pub justification_requested: bool,
    pub incident: bool,
    pub actions: Vec<ActionOffer>,
    /// Break-glass review deadline (RFC 3339), when there is one.
    pub review_by: Option<String>,
    /// Stable key of the alert on the receiving side (PagerDuty dedup key).
    pub dedup_key: String,
    pub created_at: String,
}

pub fn severity_label(s: u8) -> &'static str {
    match s {
        3 => "urgent",
        2 => "needs review",
        _ => "informational",
    }
}

impl Message {
    pub fn headline(&self) -> String {
        let prefix = match self.kind {
            MessageKind::Alert => "",
            MessageKind::FollowUp => "Follow-up due: ",
            MessageKind::Resolve => "Resolved: ",
        };
        format!(
            "{prefix}[Severity {} – {}] {}",
            self.severity,
            severity_label(self.severity),
            self.title
        )
    }

    /// The ask that goes with the severity.
    pub fn ask(&self) -> Option<String> {
        match self.kind {
            MessageKind::FollowUp => Some(format!(
                "Break-glass review is due{}: review the change and confirm credentials were rotated.",
                self.review_by
                    .as_deref()
                    .map(|t| format!(" (by {t})"))
                    .unwrap_or_default()
            )),
            _ if self.justification_requested => Some(
                "Owner: please reply with a one-sentence justification for this change.".into(),
            ),
            _ if self.incident => {
                Some("Incident opened: on-call, please take it from here.".into())
            }
            _ => None,
        }
    }

    /// Plain text body (email, ticket descriptions); markdown-light.
    pub fn text(&self) -> String {
        let mut s = String::new();
        s.push_str(&self.summary);
        s.push_str("\n\n");
        s.push_str(&format!(
            "Severity: {} ({})",
            self.severity,
            severity_label(self.severity)
        ));
        if self.detector_severity != self.severity {
            s.push_str(&format!(", detectors said {}", self.detector_severity));
        }
        s.push('\n');
        s.push_str(&format!("Signals: {}\n", self.signals.join(", ")));
        if !self.systems.is_empty() {
            s.push_str(&format!("Systems: {}\n", self.systems.join(", ")));
        }
        if !self.actors.is_empty() {
            s.push_str(&format!("Actors: {}\n", self.actors.join(", ")));
        }
        s.push_str(&format!(
            "Evidence: {} event(s); route `{}`\n",
            self.event_count, self.route
        ));
        for n in &self.notes {
            s.push_str(&format!("Policy: {n}\n"));
        }
        for n in &self.next_steps {
            s.push_str(&format!("Suggested next step: {n}\n"));
        }
        for a in &self.actions {
            s.push_str(&format!(
                "Response action {} on {}: {} ({})\n",
                a.action, a.target, a.state, a.id
            ));
        }
        if let Some(ask) = self.ask() {
            s.push_str(&format!("\n{ask}\n"));
        }
        s.push_str(&format!("\nReview: {}\n", self.review_url));
        s
    }
}

/// How a delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again later (network, 5xx, 429); `after` is the receiver's own hint.
    #[error("{reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The receiver refused the message itself; retrying the same bytes will not help.
    #[error("rejected: {0}")]
    Rejected(String),
}

impl DeliveryError {
    pub fn retry(reason: impl Into<String>) -> Self {
        DeliveryError::Retry {
            reason: reason.into(),
            after: None,
        }
    }
}

impl From<reqwest::Error> for DeliveryError {
    /// Without the URL: for Slack, Teams and webhooks the URL is the secret, and this
    /// text is stored in the outbox and served to readers.
    fn from(e: reqwest::Error) -> Self {
        let e = e.without_url();
        if e.is_builder() {
            return DeliveryError::Rejected(format!("cannot build the request: {e}"));
        }
        // Connection refused, reset, timeouts: the receiver may be back later.
        DeliveryError::retry(format!("{e}"))
    }
}

/// Turns an HTTP answer into success (its body) or a classified failure.
pub async fn check_response(resp: reqwest::Response) -> Result<String, DeliveryError> {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = resp.text().await.unwrap_or_default();
    let short: String = body.chars().take(300).collect();
    if status.is_success() {
        return Ok(body);
    }
    let reason = format!("HTTP {status}: {short}");
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Err(DeliveryError::Retry {
            reason,
            after: retry_after,
        })
    } else {
        Err(DeliveryError::Rejected(reason))
    }
}

/// A configured destination, ready to send.
#[derive(Debug, Clone)]
pub enum Destination {
    Slack(slack::Slack),
    Teams(teams::Teams),
    Webhook(webhook::Webhook),
    Jira(jira::Jira),
    Linear(linear::Linear),
    PagerDuty(pagerduty::PagerDuty),
    Digest(digest::Digest),
}

/// What the receiver said when it accepted (issue key, PagerDuty dedup key…).
pub type Receipt = String;

impl Destination {
    /// Builds a destination from its expanded config; `Err` says why it is disabled.
    pub fn build(
        name: &str,
        cfg: &DestinationConfig,
        http: &reqwest::Client,
    ) -> Result<Destination, String> {
        let empty: Vec<&str> = cfg
            .required()
            .into_iter()
            .filter(|(_, v)| v.trim().is_empty())
            .map(|(k, _)| k)
            .collect();
        if !empty.is_empty() {
            return Err(format!(
                "destination `{name}` is not configured ({} empty)",
                empty.join(", ")
            ));
        }
        let http = http.clone();
        Ok(match cfg.clone() {
            DestinationConfig::Slack { url } => Destination::Slack(slack::Slack { url, http }),
            DestinationConfig::Teams { url } => Destination::Teams(teams::Teams { url, http }),
            DestinationConfig::Webhook { url, secret } => {
                Destination::Webhook(webhook::Webhook { url, secret, http })
            }
            DestinationConfig::Jira {
                base_url,
                project,
                issue_type,
                incident_issue_type,
                email,
                token,
                labels,
                priorities,
            } => Destination::Jira(jira::Jira {
                base_url: base_url.trim_end_matches('/').to_string(),
                project,
                issue_type,
                incident_issue_type,
                email,
                token,
                labels,
                priorities,
                http,
            }),
            DestinationConfig::Linear {
                url,
                api_key,
                team_id,
                label_ids,
            } => Destination::Linear(linear::Linear {
                url,
                api_key,
                team_id,
                label_ids,
                http,
            }),
            DestinationConfig::Pagerduty { url, routing_key } => {
                Destination::PagerDuty(pagerduty::PagerDuty {
                    url,
                    routing_key,
                    http,
                })
            }
            DestinationConfig::EmailDigest {
                smtp_url,
                from,
                to,
                send_at,
                subject,
            } => Destination::Digest(digest::Digest::new(
                &smtp_url, &from, &to, &send_at, &subject,
            )?),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Slack(_) => "slack",
            Destination::Teams(_) => "teams",
            Destination::Webhook(_) => "webhook",
            Destination::Jira(_) => "jira",
            Destination::Linear(_) => "linear",
            Destination::PagerDuty(_) => "pagerduty",
            Destination::Digest(_) => "email_digest",
        }
    }

    /// Destinations that send many messages at once on a schedule (the digest).
    pub fn is_digest(&self) -> bool {
        matches!(self, Destination::Digest(_))
    }

    /// Whether this destination has anything to say for this kind of message (only
    /// PagerDuty resolves; digests carry no follow-ups).
    pub fn accepts(&self, kind: MessageKind) -> bool {
        match (self, kind) {
            (Destination::PagerDuty(_), _) => true,
            (_, MessageKind::Resolve) => false,
            (Destination::Digest(_), MessageKind::FollowUp) => false,
            _ => true,
        }
    }

    /// Sends one message. `delivery` is the outbox id (idempotency key on the receiver);
    /// `retrying` says an earlier attempt may have reached the receiver.
    pub async fn send(
        &self,
        delivery: u64,
        m: &Message,
        retrying: bool,
    ) -> Result<Receipt, DeliveryError> {
        match self {
            Destination::Slack(d) => d.send(m).await,
            Destination::Teams(d) => d.send(m).await,
            Destination::Webhook(d) => d.send(delivery, m).await,
            Destination::Jira(d) => d.send(delivery, m, retrying).await,
            Destination::Linear(d) => d.send(delivery, m, retrying).await,
            Destination::PagerDuty(d) => d.send(m).await,
            Destination::Digest(d) => d.send(&[(delivery, m.clone())]).await,
        }
    }
}

/// Builds every destination of the policy, expanding `${VAR}` from `env`. Disabled ones
/// map to the reason.
pub fn build_all(
    policy: &plumbline_policy::model::Policy,
    env: &dyn Fn(&str) -> Option<String>,
    http: &reqwest::Client,
) -> BTreeMap<String, Result<Destination, String>> {
    policy
        .destinations
        .iter()
        .map(|(name, cfg)| {
            let (cfg, missing) = cfg.expanded(env);
            let built = Destination::build(name, &cfg, http).map_err(|e| {
                if missing.is_empty() {
                    e
                } else {
                    format!("{e}; set {}", missing.join(", "))
                }
            });
            (name.clone(), built)
        })
        .collect()
}

/// `[delivery]`: how the outbox retries and how long it keeps what it sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub give_up_hours: u64,
    pub poll_ms: u64,
    pub http_timeout_ms: u64,
    pub keep_delivered_days: u64,
    pub digest_max_alerts: usize,
}

impl DeliveryConfig {
    pub fn settings(&self) -> outbox::DeliverySettings {
        outbox::DeliverySettings {
            retry_base: Duration::from_millis(self.retry_base_ms.max(1)),
            retry_max: Duration::from_millis(self.retry_max_ms.max(self.retry_base_ms.max(1))),
            give_up_after: Duration::from_secs(self.give_up_hours.max(1) * 3600),
            poll: Duration::from_millis(self.poll_ms.max(10)),
            keep_finished: Duration::from_secs(self.keep_delivered_days * 86400),
            digest_limit: self.digest_max_alerts.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumbline_policy::model::Policy;

    #[test]
    fn default_destinations_are_disabled_until_their_variable_is_set() {
        let p = Policy::default_policy();
        let http = reqwest::Client::new();
        let none = build_all(&p, &|_| None, &http);
        let slack = none["slack"].as_ref().unwrap_err();
        assert!(slack.contains("PLUMBLINE_SLACK_WEBHOOK_URL"), "{slack}");
        let set = build_all(
            &p,
            &|k| (k == "PLUMBLINE_SLACK_WEBHOOK_URL").then(|| "https://hooks.slack.test/x".into()),
            &http,
        );
        assert!(set["slack"].is_ok());
        assert!(set["pagerduty"].is_err());
    }
}

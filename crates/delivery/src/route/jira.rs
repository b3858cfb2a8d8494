//! Jira: create an issue with `POST /rest/api/2/issue` (plain-text description; v2 works on
//! Cloud and Server/Data Center). Cloud authenticates with email + API token (basic),
//! Server/DC with a personal access token (bearer).
//!
//! Jira has no idempotency key, so each issue carries a `plumbline-delivery-<id>` label and
//! a retry first searches for it: an attempt that timed out after Jira created the issue
//! does not open a second one.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{check_response, DeliveryError, Message, MessageKind, Receipt};

#[derive(Debug, Clone)]
pub struct Jira {
    pub base_url: String,
    pub project: String,
    pub issue_type: String,
    pub incident_issue_type: String,
    pub email: String,
    pub token: String,
    pub labels: Vec<String>,
    pub priorities: BTreeMap<String, String>,
    pub http: reqwest::Client,
}

pub fn delivery_label(delivery: u64) -> String {
    format!("plumbline-delivery-{delivery}")
}

impl Jira {
    fn auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.email.is_empty() {
            r.bearer_auth(&self.token)
        } else {
            r.basic_auth(&self.email, Some(&self.token))
        }
    }

    pub fn fields(&self, delivery: u64, m: &Message) -> Value {
        let issue_type = if m.incident && !self.incident_issue_type.is_empty() {
            &self.incident_issue_type
        } else {
            &self.issue_type
        };
        let mut labels = self.labels.clone();
        labels.push(delivery_label(delivery));
        labels.push(format!("severity-{}", m.severity));
        let summary: String = m.headline().chars().take(250).collect();
        let mut description = m.text();
        description.push_str(&format!("\nPlumbline alert {}\n", m.alert_id));
        let mut fields = json!({
            "project": {"key": self.project},
            "summary": summary,
            "description": description,
            "issuetype": {"name": issue_type},
            "labels": labels,
        });
        if let Some(p) = self.priorities.get(&m.severity.to_string()) {
            fields["priority"] = json!({"name": p});
        }
        json!({"fields": fields})
    }

    /// An issue already created for this delivery, if any.
    async fn existing(&self, delivery: u64) -> Result<Option<String>, DeliveryError> {
        let cloud = self.base_url.contains(".atlassian.net");
        // Cloud retired /rest/api/2/search in favour of /rest/api/3/search/jql.
        let path = if cloud {
            "/rest/api/3/search/jql"
        } else {
            "/rest/api/2/search"
        };
        let jql = format!("labels = \"{}\"", delivery_label(delivery));
        let resp = self
            .auth(self.http.get(format!("{}{path}", self.base_url)))
            .query(&[
                ("jql", jql.as_str()),
                ("maxResults", "1"),
                ("fields", "summary"),
            ])
            .send()
            .await?;
        let body = check_response(resp).await?;
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        Ok(v["issues"]
            .get(0)
            .and_then(|i| i["key"].as_str().or(i["id"].as_str()))
            .map(str::to_string))
    }

    pub async fn send(
        &self,
        delivery: u64,
        m: &Message,
        retrying: bool,
    ) -> Result<Receipt, DeliveryError> {
        if m.kind == MessageKind::Resolve {
            return Ok("nothing to resolve".into());
        }
        if retrying {
            if let Some(key) = self.existing(delivery).await? {
                return Ok(key);
            }
        }
        let resp = self
            .auth(
                self.http
                    .post(format!("{}/rest/api/2/issue", self.base_url)),
            )
            .json(&self.fields(delivery, m))
            .send()
            .await?;
        let body = check_response(resp).await?;
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        Ok(v["key"].as_str().unwrap_or("created").to_string())
    }
}

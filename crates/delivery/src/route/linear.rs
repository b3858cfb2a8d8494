//! Linear: the GraphQL `issueCreate` mutation at `https://api.linear.app/graphql`. Personal
//! API keys go in `Authorization` as they are (OAuth tokens as `Bearer …`). GraphQL errors
//! arrive with HTTP 200 and an `errors` array.
//!
//! Like Jira, Linear has no idempotency key: the description ends with the delivery id and
//! a retry searches for it before creating.

use serde_json::{json, Value};

use super::{check_response, DeliveryError, Message, MessageKind, Receipt};

#[derive(Debug, Clone)]
pub struct Linear {
    pub url: String,
    pub api_key: String,
    pub team_id: String,
    pub label_ids: Vec<String>,
    pub http: reqwest::Client,
}

pub const CREATE: &str = "mutation IssueCreate($input: IssueCreateInput!) { issueCreate(input: $input) { success issue { id identifier url } } }";
pub const FIND: &str = "query FindIssue($filter: IssueFilter) { issues(filter: $filter, first: 1) { nodes { id identifier url } } }";

pub fn delivery_marker(delivery: u64) -> String {
    format!("plumbline-delivery-{delivery}")
}

/// Linear priorities: 1 urgent, 2 high, 3 medium, 4 low.
fn priority(severity: u8) -> u8 {
    match severity {
        3 => 1,
        2 => 2,
        _ => 4,
    }
}

impl Linear {
    async fn graphql(&self, query: &str, variables: Value) -> Result<Value, DeliveryError> {
        let resp = self
            .http
            .post(&self.url)
            .header(reqwest::header::AUTHORIZATION, &self.api_key)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await?;
        let body = check_response(resp).await?;
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| DeliveryError::retry(format!("Linear answered with non-JSON: {e}")))?;
        if let Some(errors) = v["errors"].as_array().filter(|e| !e.is_empty()) {
            let msg = errors
                .iter()
                .filter_map(|e| e["message"].as_str())
                .collect::<Vec<_>>()
                .join("; ");
            // Rate limiting is reported as a GraphQL error with this code.
            let limited = errors
                .iter()
                .any(|e| e["extensions"]["code"].as_str() == Some("RATELIMITED"));
            return Err(if limited {
                DeliveryError::retry(format!("Linear: {msg}"))
            } else {
                DeliveryError::Rejected(format!("Linear: {msg}"))
            });
        }
        Ok(v)
    }

    pub fn input(&self, delivery: u64, m: &Message) -> Value {
        let mut description = m.text();
        description.push_str(&format!(
            "\n<!-- {} alert {} -->\n",
            delivery_marker(delivery),
            m.alert_id
        ));
        let mut input = json!({
            "teamId": self.team_id,
            "title": m.headline(),
            "description": description,
            "priority": priority(m.severity),
        });
        if !self.label_ids.is_empty() {
            input["labelIds"] = json!(self.label_ids);
        }
        input
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
            let found = self
                .graphql(
                    FIND,
                    json!({"filter": {"description": {"contains": delivery_marker(delivery)}}}),
                )
                .await?;
            if let Some(id) = found["data"]["issues"]["nodes"][0]["identifier"].as_str() {
                return Ok(id.to_string());
            }
        }
        let v = self
            .graphql(CREATE, json!({"input": self.input(delivery, m)}))
            .await?;
        let created = &v["data"]["issueCreate"];
        if created["success"].as_bool() != Some(true) {
            return Err(DeliveryError::Rejected(format!(
                "Linear did not create the issue: {created}"
            )));
        }
        Ok(created["issue"]["identifier"]
            .as_str()
            .unwrap_or("created")
            .to_string())
    }
}

//! Gated response actions: pause an n8n workflow, revoke a credential where its source
//! supports it. Policy proposes them on urgent routes; each waits for a human approval
//! (`POST /v1/actions/{id}/approve`) unless policy marks it automatic for the alert's
//! signal. Approved actions run through the outbox (durable, retried); every step is kept
//! with who decided.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::route::outbox::{ActionRunner, NewDelivery, Outbox, Payload};
use crate::route::{check_response, DeliveryError};
use plumbline_alert::AlertBook;
use plumbline_event::{format_time, Event, Source};
use plumbline_policy::model::ActionDef;
use plumbline_policy::schedule::Clock;
use plumbline_store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// Waiting for a human.
    Pending,
    /// Approved (by a person or by policy); queued to run.
    Approved,
    Denied,
    /// Nobody decided in time.
    Expired,
    Done,
    Failed,
}

/// What an action acts on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    N8nWorkflow { workflow_id: String },
    GithubDeployKey { repository: String, key_id: String },
    VaultToken { accessor: String },
}

impl Target {
    /// Refuses a target that is not exactly what its system's API calls an id, before it
    /// is proposed and again before it is sent (records written by an older version).
    pub fn validate(&self) -> Result<(), String> {
        fn charset(s: &str, max: usize, extra: &[u8]) -> bool {
            !s.is_empty()
                && s.len() <= max
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
        }
        let ok = match self {
            // n8n ids are short alphanumeric strings (nanoid; older versions: integers).
            Target::N8nWorkflow { workflow_id } => charset(workflow_id, 64, b"-_"),
            // `owner/repo` as GitHub allows them; deploy key ids are integers.
            Target::GithubDeployKey { repository, key_id } => {
                let mut parts = repository.split('/');
                let (owner, repo) = (parts.next(), parts.next());
                parts.next().is_none()
                    && owner.is_some_and(|o| charset(o, 39, b"-") && !o.starts_with('-'))
                    && repo.is_some_and(|r| charset(r, 100, b"-_.") && r != "." && r != "..")
                    && charset(key_id, 20, b"")
                    && key_id.bytes().all(|b| b.is_ascii_digit())
            }
            Target::VaultToken { accessor } => charset(accessor, 128, b"-_."),
        };
        if ok {
            Ok(())
        } else {
            Err(format!("not a valid target: {self:?}"))
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Target::N8nWorkflow { workflow_id } => format!("n8n workflow {workflow_id}"),
            Target::GithubDeployKey { repository, key_id } => {
                format!("GitHub deploy key {key_id} on {repository}")
            }
            Target::VaultToken { accessor } => format!("Vault token (accessor {accessor})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Who: the person named in the request, else the API token's name; `policy` when
    /// automatic.
    pub by: String,
    /// The API token that made the request.
    pub token: String,
    pub at: String,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub id: String,
    pub alert_id: String,
    /// The policy's name for it (`pause_workflow`).
    pub action: String,
    pub kind: String,
    pub target: Target,
    pub signals: Vec<String>,
    pub state: ActionState,
    pub proposed_at: String,
    pub expires_at: String,
    pub automatic: bool,
    pub decision: Option<Decision>,
    pub delivery_id: Option<u64>,
    pub result: Option<String>,
    pub finished_at: Option<String>,
    /// Everything that happened to it, oldest first.
    pub log: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no response action `{0}`")]
    NotFound(String),
    #[error("response action {id} is {state:?}, not pending: it was already decided")]
    NotPending { id: String, state: ActionState },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sled::Error> for ActionError {
    fn from(e: sled::Error) -> Self {
        ActionError::Store(StoreError::Sled(e))
    }
}

/// Proposed actions, their decisions and their execution.
#[derive(Clone)]
pub struct Responder {
    tree: sled::Tree,
    defs: Arc<BTreeMap<String, ActionDef>>,
    enabled: bool,
    expire: time::Duration,
    outbox: Outbox,
    alerts: AlertBook,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    /// Serialises decisions so two approvals cannot both queue a run.
    lock: Arc<Mutex<()>>,
    /// Told of every version of a record stored here (a cluster shares them).
    replica: Arc<std::sync::OnceLock<plumbline_store::RecordReplica>>,
}

fn action_id(alert_id: &str, action: &str, target: &Target) -> String {
    let mut h = Sha256::new();
    h.update(alert_id.as_bytes());
    h.update([0]);
    h.update(action.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(target).expect("json"));
    format!("act-{}", &hex::encode(h.finalize())[..16])
}

/// The targets an action could act on, from the evidence events. Only events their own
/// source verified at ingest (a signed webhook, the source's token) may name a target;
/// anything an API token could have posted is evidence, never a target.
pub fn targets(def: &ActionDef, events: &[Arc<Event>]) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for e in events.iter().filter(|e| e.verified_by_source()) {
        let t = match def {
            ActionDef::N8nPauseWorkflow { .. } if e.source == Source::N8n => e
                .attr_str("workflow.id")
                .filter(|s| !s.is_empty())
                .map(|w| Target::N8nWorkflow {
                    workflow_id: w.to_string(),
                }),
            ActionDef::RevokeCredential { .. } => match e.source {
                Source::Github if e.action.starts_with("deploy_key.") => {
                    let key = e
                        .attributes
                        .get("key.id")
                        .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string()))
                        .filter(|s| !s.is_empty() && s != "null");
                    key.map(|key_id| Target::GithubDeployKey {
                        repository: e.system.clone(),
                        key_id,
                    })
                }
                Source::Vault => ["auth.accessor", "token.accessor", "credential.accessor"]
                    .iter()
                    .find_map(|k| e.attr_str(k))
                    // Vault's audit log HMACs accessors unless told not to: not usable.
                    .filter(|a| !a.is_empty() && !a.starts_with("hmac-"))
                    .map(|a| Target::VaultToken {
                        accessor: a.to_string(),
                    }),
                _ => None,
            },
            _ => None,
        };
        if let Some(t) = t.filter(|t| t.validate().is_ok()) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

impl Responder {
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        db: &sled::Db,
        defs: BTreeMap<String, ActionDef>,
        enabled: bool,
        expire_hours: u64,
        outbox: Outbox,
        alerts: AlertBook,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Result<Responder, StoreError> {
        Ok(Responder {
            tree: db.open_tree("response_actions")?,
            defs: Arc::new(defs),
            enabled,
            expire: time::Duration::hours(expire_hours as i64),
            outbox,
            alerts,
            clock,
            http,
            lock: Arc::default(),
            replica: Arc::default(),
        })
    }

    /// Copies every version of an action record stored here from now on to `replica`.
    pub fn replicate(&self, replica: plumbline_store::RecordReplica) {
        let _ = self.replica.set(replica);
    }

    /// Keeps a version of a record another cluster node stored, unless the one here has
    /// seen more (its log is longer: proposal, decision, run, outcome only ever append).
    pub fn import(&self, value: &[u8]) -> Result<(), StoreError> {
        let Ok(r) = serde_json::from_slice::<ActionRecord>(value) else {
            return Ok(());
        };
        let _g = self.lock.lock().expect("actions lock");
        if self
            .get(&r.id)?
            .is_some_and(|here| here.log.len() > r.log.len())
        {
            return Ok(());
        }
        self.tree.insert(r.id.as_bytes(), value)?;
        Ok(())
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn get(&self, id: &str) -> Result<Option<ActionRecord>, StoreError> {
        Ok(self
            .tree
            .get(id)?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    fn put(&self, r: &ActionRecord) -> Result<(), StoreError> {
        let value = serde_json::to_vec(r).expect("json");
        self.tree.insert(r.id.as_bytes(), value.as_slice())?;
        if let Some(replica) = self.replica.get() {
            replica(r.id.as_bytes(), &value);
        }
        Ok(())
    }

    /// All actions, newest proposal first, after expiring stale proposals.
    pub fn list(&self) -> Result<Vec<ActionRecord>, StoreError> {
        self.expire_stale()?;
        let mut v: Vec<ActionRecord> = self
            .tree
            .iter()
            .values()
            .filter_map(|v| v.ok().and_then(|v| serde_json::from_slice(&v).ok()))
            .collect();
        v.sort_by(|a, b| b.proposed_at.cmp(&a.proposed_at).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    /// Forgets the decided (not pending) actions of `alert_ids` (retention).
    pub(crate) fn forget(&self, alert_ids: &[String]) -> Result<usize, StoreError> {
        let _g = self.lock.lock().expect("actions lock");
        let mut n = 0;
        for item in self.tree.iter() {
            let (k, v) = item?;
            let Ok(r) = serde_json::from_slice::<ActionRecord>(&v) else {
                continue;
            };
            if r.state != ActionState::Pending && alert_ids.contains(&r.alert_id) {
                self.tree.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn expire_stale(&self) -> Result<(), StoreError> {
        let _g = self.lock.lock().expect("actions lock");
        let now = format_time(self.clock.now());
        for v in self.tree.iter().values() {
            let Ok(mut r) = serde_json::from_slice::<ActionRecord>(&v?) else {
                continue;
            };
            if r.state == ActionState::Pending && r.expires_at <= now {
                r.state = ActionState::Expired;
                r.log
                    .push(format!("{now} expired: nobody approved it in time"));
                self.put(&r)?;
                self.note(
                    &r.alert_id,
                    format!("response action {} expired unapproved", r.id),
                );
            }
        }
        Ok(())
    }

    fn note(&self, alert_id: &str, note: String) {
        if let Err(e) = self.alerts.update(alert_id, |a| a.notes.push(note)) {
            tracing::warn!(alert = alert_id, error = %e, "could not note the action on the alert");
        }
    }

    /// Proposes `action` for every target in the evidence. Returns the records (existing
    /// ones unchanged: the same alert, action and target is one proposal).
    pub fn propose(
        &self,
        alert_id: &str,
        action: &str,
        signals: &[String],
        events: &[Arc<Event>],
    ) -> Result<Vec<ActionRecord>, StoreError> {
        let Some(def) = self.defs.get(action) else {
            return Ok(vec![]);
        };
        if !self.enabled {
            return Ok(vec![]);
        }
        let _g = self.lock.lock().expect("actions lock");
        let now = self.clock.now();
        let automatic = signals.iter().any(|s| {
            def.automatic_signals()
                .iter()
                .any(|p| plumbline_contract::glob::matches(p, s))
        });
        let mut out = Vec::new();
        for target in targets(def, events) {
            let id = action_id(alert_id, action, &target);
            if let Some(existing) = self.get(&id)? {
                out.push(existing);
                continue;
            }
            let mut r = ActionRecord {
                id: id.clone(),
                alert_id: alert_id.to_string(),
                action: action.to_string(),
                kind: def.kind().to_string(),
                target: target.clone(),
                signals: signals.to_vec(),
                state: ActionState::Pending,
                proposed_at: format_time(now),
                expires_at: format_time(now + self.expire),
                automatic,
                decision: None,
                delivery_id: None,
                result: None,
                finished_at: None,
                log: vec![format!(
                    "{} proposed {} on {}",
                    format_time(now),
                    action,
                    target.describe()
                )],
            };
            if automatic {
                self.approve_locked(
                    &mut r,
                    Decision {
                        by: "policy".into(),
                        token: String::new(),
                        at: format_time(now),
                        comment: format!("automatic for signal(s) {}", signals.join(", ")),
                    },
                    now,
                )?;
            } else {
                self.put(&r)?;
            }
            out.push(r);
        }
        Ok(out)
    }

    fn approve_locked(
        &self,
        r: &mut ActionRecord,
        d: Decision,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let delivery = self.outbox.enqueue(
            NewDelivery {
                destination: format!("action:{}", r.action),
                payload: Payload::Action {
                    action_id: r.id.clone(),
                },
                not_before: None,
                held: None,
                condition: None,
            },
            now,
        )?;
        r.state = ActionState::Approved;
        r.delivery_id = Some(delivery);
        r.log.push(format!(
            "{} approved by {}{}",
            d.at,
            d.by,
            if d.comment.is_empty() {
                String::new()
            } else {
                format!(": {}", d.comment)
            }
        ));
        r.decision = Some(d.clone());
        self.put(r)?;
        self.note(
            &r.alert_id,
            format!(
                "response action {} ({} on {}) approved by {}",
                r.id,
                r.action,
                r.target.describe(),
                d.by
            ),
        );
        self.outbox.wake();
        Ok(())
    }

    /// A person approves: the action is queued to run.
    pub fn approve(
        &self,
        id: &str,
        by: &str,
        token: &str,
        comment: &str,
    ) -> Result<ActionRecord, ActionError> {
        self.expire_stale()?;
        let _g = self.lock.lock().expect("actions lock");
        let mut r = self
            .get(id)?
            .ok_or_else(|| ActionError::NotFound(id.to_string()))?;
        if r.state != ActionState::Pending {
            return Err(ActionError::NotPending {
                id: id.to_string(),
                state: r.state,
            });
        }
        let now = self.clock.now();
        self.approve_locked(
            &mut r,
            Decision {
                by: by.to_string(),
                token: token.to_string(),
                at: format_time(now),
                comment: comment.to_string(),
            },
            now,
        )?;
        Ok(r)
    }

    pub fn deny(
        &self,
        id: &str,
        by: &str,
        token: &str,
        comment: &str,
    ) -> Result<ActionRecord, ActionError> {
        self.expire_stale()?;
        let _g = self.lock.lock().expect("actions lock");
        let mut r = self
            .get(id)?
            .ok_or_else(|| ActionError::NotFound(id.to_string()))?;
        if r.state != ActionState::Pending {
            return Err(ActionError::NotPending {
                id: id.to_string(),
                state: r.state,
            });
        }
        let at = format_time(self.clock.now());
        r.state = ActionState::Denied;
        r.log.push(format!(
            "{at} denied by {by}{}",
            if comment.is_empty() {
                String::new()
            } else {
                format!(": {comment}")
            }
        ));
        r.decision = Some(Decision {
            by: by.into(),
            token: token.into(),
            at,
            comment: comment.into(),
        });
        self.put(&r)?;
        self.note(
            &r.alert_id,
            format!("response action {} ({}) denied by {by}", r.id, r.action),
        );
        Ok(r)
    }

    async fn execute(&self, r: &ActionRecord, delivery: u64) -> Result<String, DeliveryError> {
        let def = self
            .defs
            .get(&r.action)
            .ok_or_else(|| {
                DeliveryError::Rejected(format!("action `{}` is no longer in the policy", r.action))
            })?
            .expanded(&|k| std::env::var(k).ok());
        r.target.validate().map_err(DeliveryError::Rejected)?;
        let client = &self.http;
        match (&def, &r.target) {
            (
                ActionDef::N8nPauseWorkflow {
                    base_url, api_key, ..
                },
                Target::N8nWorkflow { workflow_id },
            ) => {
                if base_url.is_empty() || api_key.is_empty() {
                    return Err(DeliveryError::Rejected(
                        "n8n base_url / api_key not configured".into(),
                    ));
                }
                let url = format!(
                    "{}/api/v1/workflows/{}/deactivate",
                    base_url.trim_end_matches('/'),
                    urlencode(workflow_id)
                );
                let resp = client
                    .post(url)
                    .header("X-N8N-API-KEY", api_key)
                    .send()
                    .await?;
                check_response(resp).await?;
                Ok(format!("n8n workflow {workflow_id} deactivated"))
            }
            (
                ActionDef::RevokeCredential {
                    github_api_url,
                    github_token,
                    ..
                },
                Target::GithubDeployKey { repository, key_id },
            ) => {
                if github_token.is_empty() {
                    return Err(DeliveryError::Rejected(
                        "github_token not configured".into(),
                    ));
                }
                let (owner, repo) = repository.split_once('/').expect("validated");
                let url = format!(
                    "{}/repos/{}/{}/keys/{}",
                    github_api_url.trim_end_matches('/'),
                    urlencode(owner),
                    urlencode(repo),
                    urlencode(key_id)
                );
                let resp = client
                    .delete(url)
                    .bearer_auth(github_token)
                    .header("Accept", "application/vnd.github+json")
                    .header("X-GitHub-Api-Version", "2022-11-28")
                    .header("User-Agent", "plumbline")
                    .send()
                    .await?;
                // A retry after a lost answer finds the key gone: that is success.
                if resp.status().as_u16() == 404 && delivery_retrying(r) {
                    return Ok(format!("deploy key {key_id} already removed"));
                }
                check_response(resp).await?;
                Ok(format!("deploy key {key_id} removed from {repository}"))
            }
            (
                ActionDef::RevokeCredential {
                    vault_addr,
                    vault_token,
                    ..
                },
                Target::VaultToken { accessor },
            ) => {
                if vault_addr.is_empty() || vault_token.is_empty() {
                    return Err(DeliveryError::Rejected(
                        "vault_addr / vault_token not configured".into(),
                    ));
                }
                let resp = client
                    .post(format!(
                        "{}/v1/auth/token/revoke-accessor",
                        vault_addr.trim_end_matches('/')
                    ))
                    .header("X-Vault-Token", vault_token)
                    .json(&json!({"accessor": accessor}))
                    .send()
                    .await?;
                check_response(resp).await?;
                Ok(format!("Vault token with accessor {accessor} revoked"))
            }
            _ => Err(DeliveryError::Rejected(format!(
                "{} cannot act on {}",
                def.kind(),
                r.target.describe()
            ))),
        }
        .inspect(|_| tracing::info!(action = %r.id, delivery, "response action ran"))
    }
}

fn delivery_retrying(r: &ActionRecord) -> bool {
    r.log.iter().any(|l| l.contains("attempt failed"))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl ActionRunner for Responder {
    fn run<'a>(
        &'a self,
        action_id: &'a str,
        delivery: u64,
    ) -> Pin<Box<dyn Future<Output = Result<String, DeliveryError>> + Send + 'a>> {
        Box::pin(async move {
            let r = self
                .get(action_id)
                .map_err(|e| DeliveryError::retry(format!("actions store: {e}")))?
                .ok_or_else(|| DeliveryError::Rejected(format!("no action {action_id}")))?;
            if r.state != ActionState::Approved {
                return Err(DeliveryError::Rejected(format!(
                    "action {action_id} is {:?}, not approved",
                    r.state
                )));
            }
            let out = self.execute(&r, delivery).await;
            if let Err(DeliveryError::Retry { reason, .. }) = &out {
                let _g = self.lock.lock().expect("actions lock");
                if let Ok(Some(mut r)) = self.get(action_id) {
                    r.log.push(format!(
                        "{} attempt failed, will retry: {reason}",
                        format_time(self.clock.now())
                    ));
                    let _ = self.put(&r);
                }
            }
            out
        })
    }

    fn record(&self, action_id: &str) -> Option<Vec<u8>> {
        self.tree.get(action_id).ok().flatten().map(|v| v.to_vec())
    }

    fn finished(&self, action_id: &str, outcome: Result<&str, &str>) {
        let _g = self.lock.lock().expect("actions lock");
        let Ok(Some(mut r)) = self.get(action_id) else {
            return;
        };
        let at = format_time(self.clock.now());
        let (state, text) = match outcome {
            Ok(t) => (ActionState::Done, t.to_string()),
            Err(e) => (ActionState::Failed, e.to_string()),
        };
        r.state = state;
        r.log.push(format!("{at} {state:?}: {text}"));
        r.result = Some(text.clone());
        r.finished_at = Some(at);
        if let Err(e) = self.put(&r) {
            tracing::error!(action = action_id, error = %e, "could not record the action outcome");
        }
        let by = r.decision.as_ref().map(|d| d.by.as_str()).unwrap_or("?");
        self.note(
            &r.alert_id,
            format!(
                "response action {} ({} on {}, approved by {by}): {text}",
                r.id,
                r.action,
                r.target.describe()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumbline_event::parse_event;
    use serde_json::json;

    fn revoke() -> ActionDef {
        ActionDef::RevokeCredential {
            github_api_url: "https://api.github.com".into(),
            github_token: "t".into(),
            vault_addr: String::new(),
            vault_token: String::new(),
            automatic_signals: vec![],
        }
    }

    fn deploy_key(system: &str, key_id: &str, verified: bool) -> Arc<Event> {
        let mut attributes = json!({"key.id": key_id, "read_only": false});
        if verified {
            attributes["plumbline.verified_by"] = json!("github");
        }
        Arc::new(
            parse_event(json!({
                "id": "k", "time": "2026-11-25T10:00:00Z", "source": "github",
                "actor": {"id": "mallory", "type": "human"}, "system": system,
                "action": "deploy_key.created", "attributes": attributes,
            }))
            .unwrap(),
        )
    }

    /// The confirmed attack: a `system` that walks out of `/repos/…` to an org hook.
    #[test]
    fn a_target_cannot_walk_out_of_its_api_path() {
        let hostile = deploy_key("acme/api/../../../orgs/acme/hooks/77#", "1", true);
        assert!(targets(&revoke(), &[hostile]).is_empty());
        for (repo, key) in [
            ("acme/api", "1/../../hooks"),
            ("acme", "1"),
            ("acme/..", "1"),
            ("acme/api?x=1", "1"),
            ("-acme/api", "1"),
            ("acme/api", "12a"),
        ] {
            let t = Target::GithubDeployKey {
                repository: repo.into(),
                key_id: key.into(),
            };
            assert!(t.validate().is_err(), "{t:?} passed");
        }
        let good = Target::GithubDeployKey {
            repository: "acme/payments.api_v2".into(),
            key_id: "987".into(),
        };
        assert!(good.validate().is_ok());
        assert!(Target::N8nWorkflow {
            workflow_id: "../workflows/1".into()
        }
        .validate()
        .is_err());
    }

    /// A cluster: every stored version of a record goes to the replica; a version from
    /// another node is kept unless the one here has seen more.
    #[test]
    fn decisions_replicate_and_the_longer_history_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = plumbline_store::Store::open(dir.path()).unwrap();
        let responder = Responder::open(
            store.db(),
            BTreeMap::from([("revoke".to_string(), revoke())]),
            true,
            24,
            crate::route::outbox::Outbox::open(store.db()).unwrap(),
            AlertBook::open(&store).unwrap(),
            Arc::new(plumbline_policy::schedule::SystemClock),
            reqwest::Client::new(),
        )
        .unwrap();
        let copied: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let c = copied.clone();
        responder.replicate(Arc::new(move |_: &[u8], v: &[u8]| {
            c.lock().unwrap().push(v.to_vec())
        }));
        let record = ActionRecord {
            id: "act-1".into(),
            alert_id: "alr-1".into(),
            action: "revoke".into(),
            kind: "revoke_credential".into(),
            target: Target::GithubDeployKey {
                repository: "acme/api".into(),
                key_id: "7".into(),
            },
            signals: vec![],
            state: ActionState::Pending,
            proposed_at: "2026-11-25T10:00:00Z".into(),
            expires_at: "2999-11-25T10:00:00Z".into(),
            automatic: false,
            decision: None,
            delivery_id: None,
            result: None,
            finished_at: None,
            log: vec!["proposed".into()],
        };
        responder.put(&record).unwrap();
        assert_eq!(copied.lock().unwrap().len(), 1);
        // Another node's approval (a longer history) replaces the proposal here…
        let mut approved = record.clone();
        approved.state = ActionState::Approved;
        approved.log.push("approved by bob".into());
        responder
            .import(&serde_json::to_vec(&approved).unwrap())
            .unwrap();
        assert_eq!(
            responder.get("act-1").unwrap().unwrap().state,
            ActionState::Approved
        );
        // …and the stale proposal, arriving late, does not undo it.
        responder
            .import(&serde_json::to_vec(&record).unwrap())
            .unwrap();
        assert_eq!(
            responder.get("act-1").unwrap().unwrap().state,
            ActionState::Approved
        );
        assert_eq!(
            copied.lock().unwrap().len(),
            1,
            "imports are not replicated"
        );
    }

    /// Events an API token posted are evidence, never targets: only the source's own
    /// verified delivery names what gets revoked.
    #[test]
    fn only_events_their_source_verified_name_targets() {
        assert!(targets(&revoke(), &[deploy_key("acme/api", "7", false)]).is_empty());
        assert_eq!(
            targets(&revoke(), &[deploy_key("acme/api", "7", true)]),
            vec![Target::GithubDeployKey {
                repository: "acme/api".into(),
                key_id: "7".into()
            }]
        );
    }
}

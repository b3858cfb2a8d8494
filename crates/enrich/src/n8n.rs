//! n8n: workflow audit events name a workflow (`payload.workflowId`) but not its content.
//! Its body comes from n8n's public API (`GET /api/v1/workflows/{id}`, header
//! `X-N8N-API-KEY`; the answer is the workflow object: `id`, `name`, `active`, `nodes`,
//! `connections`, `settings`, `versionId`, …) and is attached at `payload.workflow`, where
//! the n8n adapter derives triggers, destinations, credentials, export-like nodes and node
//! changes against the version it saw before.

use serde_json::{json, Value};

use super::api::{segment, Api, Lookup, Settings, Shape};
use super::{enrich_items, skipped};
use plumbline_event::Source;
use plumbline_ingest::map::{at, s};
use plumbline_ingest::n8n::N8nConfig;

/// Audit events that name a workflow whose content detectors should see, and whether the
/// event says the content changed (then it is fetched anew; an activation publishes what
/// a save just fetched). Deleted, archived and deactivated workflows stop running, so
/// their content is not looked up.
const NAMES_A_WORKFLOW: &[(&str, bool)] = &[
    ("n8n.audit.workflow.created", true),
    ("n8n.audit.workflow.updated", true),
    ("n8n.audit.workflow.version.updated", true),
    ("n8n.audit.workflow.activated", false),
    ("n8n.audit.workflow.unarchived", false),
];

/// n8n's public API: `X-N8N-API-KEY: <key>`.
pub const API: Shape = Shape {
    source: Source::N8n,
    api_prefix: "/api/v1",
    header: "x-n8n-api-key",
    scheme: "",
};

pub fn api(c: &N8nConfig) -> Option<Api> {
    let settings = Settings {
        base_url: &c.api_url,
        credential: &c.api_key,
        timeout_ms: c.api_timeout_ms,
        per_minute: c.api_requests_per_minute,
    };
    Api::new(&API, settings)
}

pub async fn enrich(api: &Api, body: &[u8]) -> Option<Vec<u8>> {
    let label = api.label();
    enrich_items(
        body,
        &[],
        |m| {
            let name = s(m, "eventName");
            let (_, changed) = NAMES_A_WORKFLOW.iter().find(|(n, _)| *n == name)?;
            let p = m.get("payload")?;
            let id = s(p, "workflowId");
            if id.is_empty() {
                return None;
            }
            if at(p, "workflow.nodes").is_some() {
                return skipped(api);
            }
            // The version the event names, when it names one, pins the cache entry.
            let version = ["activeVersionId", "versionId"]
                .iter()
                .map(|k| s(p, k))
                .find(|v| !v.is_empty());
            Some(((id, version), *changed))
        },
        |(id, version), changed| async move {
            let lookup = Lookup {
                version,
                changed,
                versions: workflow_versions,
                ..Lookup::new(
                    format!("/api/v1/workflows/{}?excludePinnedData=true", segment(&id)),
                    "nodes",
                )
            };
            api.get(&lookup).await
        },
        |m, answer| {
            let Some(p) = m.get_mut("payload").and_then(Value::as_object_mut) else {
                return;
            };
            match answer {
                Ok(workflow) => {
                    p.insert("workflow".into(), workflow.clone());
                    p.insert("enrichment".into(), json!({ "source": label }));
                }
                Err(e) => {
                    p.insert("enrichment".into(), json!({ "error": e }));
                }
            }
        },
    )
    .await
}

/// The version a fetched workflow is: its `versionId` (an activation names the version
/// it published as `activeVersionId`, the same id), never the `activeVersionId` of the
/// answer, which may be older content than its nodes.
fn workflow_versions(w: &Value) -> Vec<String> {
    Some(s(w, "versionId"))
        .filter(|v| !v.is_empty())
        .into_iter()
        .collect()
}

//! The sources' own APIs for a scenario, played by local stand-ins
//! (`plumbline_enrich::standin`) so enrichment runs as it does against n8n and make.com:
//!
//! ```json
//! "apis": {
//!   "n8n":  {"workflows": {"<id>": [<workflow as GET /api/v1/workflows/{id} returns>, …]}},
//!   "make": {"scenarios": {"<id>": [<response of GET /api/v2/scenarios/{id}/blueprint>, …]},
//!            "connections": {"<id>": {…}}, "hooks": {"<id>": {…}}, "keys": {"<id>": {…}}}
//! }
//! ```
//! A list holds the versions a resource goes through, served in order (the last one
//! repeating): the look-up after the second audit event sees the second version.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::Value;

use plumbline_enrich::standin::{serve_make, serve_n8n, MakeData, StandIn};

const N8N_KEY: &str = "eval-n8n-api-key";
const MAKE_TOKEN: &str = "eval-make-api-token";

/// Running stand-ins (stopped when dropped) and the configuration that points the
/// service at them.
#[derive(Default)]
pub struct Apis {
    pub config: String,
    _running: Vec<StandIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct N8n {
    workflows: HashMap<String, Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Make {
    #[serde(default)]
    scenarios: HashMap<String, Vec<Value>>,
    #[serde(default)]
    connections: HashMap<String, Value>,
    #[serde(default)]
    hooks: HashMap<String, Value>,
    #[serde(default)]
    keys: HashMap<String, Value>,
}

pub async fn start(apis: &BTreeMap<String, Value>) -> anyhow::Result<Apis> {
    let mut out = Apis::default();
    for (name, spec) in apis {
        match name.as_str() {
            "n8n" => {
                let n: N8n = serde_json::from_value(spec.clone()).context("apis.n8n")?;
                let api = serve_n8n(N8N_KEY, n.workflows).await;
                out.config += &format!(
                    "[n8n]\napi_url = {:?}\napi_key = {N8N_KEY:?}\n\n",
                    api.url()
                );
                out._running.push(api);
            }
            "make" => {
                let m: Make = serde_json::from_value(spec.clone()).context("apis.make")?;
                let data = MakeData {
                    scenarios: m.scenarios,
                    connections: m.connections,
                    hooks: m.hooks,
                    keys: m.keys,
                };
                let api = serve_make(MAKE_TOKEN, data).await;
                out.config += &format!(
                    "[make]\napi_url = {:?}\napi_token = {MAKE_TOKEN:?}\n\n",
                    api.url()
                );
                out._running.push(api);
            }
            other => bail!("no stand-in for the `{other}` API (n8n, make)"),
        }
    }
    Ok(out)
}

//! The sources' own APIs for a scenario, played by local stand-ins
//! (`plumbline_enrich::standin`) so enrichment runs as it does against n8n and make.com:
//!
//! ```json
//! "apis": {
//!   "n8n":  {"workflows": {"<id>": [<workflow as GET /api/v1/workflows/{id} returns>, …]}},
//!   "make": {"scenarios": {"<id>": [<response of GET /api/v2/scenarios/{id}/blueprint>, …]},
//!            "connections": {"<id>": {…} or [{…}, …]}, "hooks": {"<id>": …}, "keys": {"<id>": …}}
//! }
//! ```
//! A list holds the versions a resource goes through, served in order (the last one
//! repeating): the look-up after the second audit event sees the second version (a
//! connection whose scopes widen). A connection, hook or key given as one object has one
//! version.

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

/// Splits `{"<id>": one object or a list of versions}` into what the stand-in serves first
/// and the versions pushed after it.
fn versions(
    kind: &'static str,
    m: HashMap<String, Value>,
    later: &mut Vec<(&'static str, String, Value)>,
) -> HashMap<String, Value> {
    m.into_iter()
        .filter_map(|(id, v)| match v {
            Value::Array(list) => {
                let mut list = list.into_iter();
                let first = list.next()?;
                later.extend(list.map(|v| (kind, id.clone(), v)));
                Some((id, first))
            }
            v => Some((id, v)),
        })
        .collect()
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
                let mut later = Vec::new();
                let data = MakeData {
                    scenarios: m.scenarios,
                    connections: versions("connections", m.connections, &mut later),
                    hooks: versions("hooks", m.hooks, &mut later),
                    keys: versions("keys", m.keys, &mut later),
                };
                let api = serve_make(MAKE_TOKEN, data).await;
                for (kind, id, v) in later {
                    api.push(kind, &id, v);
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_list_is_versions_an_object_is_one() {
        let mut later = Vec::new();
        let first = versions(
            "connections",
            HashMap::from([
                ("1".to_string(), json!({"id": 1, "scopes": []})),
                ("2".to_string(), json!([{"v": 1}, {"v": 2}, {"v": 3}])),
            ]),
            &mut later,
        );
        assert_eq!(first["1"], json!({"id": 1, "scopes": []}));
        assert_eq!(first["2"], json!({"v": 1}));
        let pushed: Vec<(&str, &str, &Value)> = later
            .iter()
            .map(|(k, id, v)| (*k, id.as_str(), v))
            .collect();
        assert_eq!(
            pushed,
            [
                ("connections", "2", &json!({"v": 2})),
                ("connections", "2", &json!({"v": 3}))
            ]
        );
    }
}

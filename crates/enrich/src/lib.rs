//! Enrichment from the sources' own APIs. An audit event names what changed (an n8n
//! workflow, a make.com scenario, connection, key or webhook) but seldom carries it; for a
//! source with an API configured, this stage fetches what each event of a delivery names
//! and attaches it to the delivery body in the shape the source's adapter already reads,
//! before the adapter maps it. Adapters stay pure mappings; the API's answer is one more
//! fact of the delivery.
//!
//! A look-up that fails (timeout, HTTP error, not JSON, over the local rate limit) does
//! not hold the delivery up: the event is stored and evaluated without it, with the
//! failure noted beside the payload (the adapter turns it into `enrichment.error`) and
//! counted (`plumbline_enrich_requests_total{source,outcome}`). The API credential is
//! sent as a sensitive header and appears in no log, error or event.

pub mod api;
mod make;
mod n8n;
pub mod standin;

/// Connections looked up per make.com blueprint at most.
pub use make::MAX_CONNECTIONS as MAKE_MAX_CONNECTIONS;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use api::{Api, Outcome};
use plumbline_event::Source;
use plumbline_ingest::SourcesConfig;

/// Look-ups of one delivery in flight at once.
const CONCURRENT: usize = 4;

/// Enrichment for every source with an API configured. Cheap to clone; the default
/// enriches nothing.
#[derive(Clone, Default)]
pub struct Enrichment {
    n8n: Option<Arc<Api>>,
    make: Option<Arc<Api>>,
}

impl Enrichment {
    /// From the sources' sections (`[n8n] api_url`, `[make] api_url`; empty = off).
    pub fn new(sources: &SourcesConfig) -> Self {
        Enrichment {
            n8n: n8n::api(&sources.n8n).map(Arc::new),
            make: make::api(&sources.make).map(Arc::new),
        }
    }

    /// Whether deliveries of `source` are enriched.
    pub fn is_on(&self, source: Source) -> bool {
        self.api(source).is_some()
    }

    fn api(&self, source: Source) -> Option<&Arc<Api>> {
        match source {
            Source::N8n => self.n8n.as_ref(),
            Source::Make => self.make.as_ref(),
            _ => None,
        }
    }

    /// The delivery body with what its events name attached, or `None` when nothing was
    /// looked up (the source has no API configured, nothing named, or not JSON: the
    /// adapter then maps the body as it came).
    pub async fn enrich(&self, source: Source, body: &[u8]) -> Option<Vec<u8>> {
        let api = self.api(source)?;
        match source {
            Source::N8n => n8n::enrich(api, body).await,
            Source::Make => make::enrich(api, body).await,
            _ => None,
        }
    }

    /// `(source, outcome, look-ups)` for every configured source, for `/metrics`.
    pub fn counts(&self) -> Vec<(Source, &'static str, u64)> {
        [&self.n8n, &self.make]
            .into_iter()
            .flatten()
            .flat_map(|api| {
                api.counts()
                    .map(|(o, n)| (api.source, o.as_str(), n))
                    .into_iter()
            })
            .collect()
    }
}

/// The per-delivery machinery both sources share: `ask` says what an item names (a key,
/// and whether the item says it changed); each distinct key is resolved once, a few at a
/// time, and `attach` puts the answer (or the failure) on every item that named it.
async fn enrich_items<K, Fut>(
    body: &[u8],
    lists: &[&str],
    ask: impl Fn(&Value) -> Option<(K, bool)>,
    resolve: impl Fn(K, bool) -> Fut,
    attach: impl Fn(&mut Value, &Result<Value, String>),
) -> Option<Vec<u8>>
where
    K: Ord + Clone,
    Fut: std::future::Future<Output = Result<Value, String>>,
{
    let mut doc: Value = serde_json::from_slice(body).ok()?;
    let mut asks: BTreeMap<K, (Vec<usize>, bool)> = BTreeMap::new();
    for (i, item) in items_mut(&mut doc, lists).into_iter().enumerate() {
        if let Some((key, changed)) = ask(item) {
            let entry = asks.entry(key).or_default();
            entry.0.push(i);
            entry.1 |= changed;
        }
    }
    if asks.is_empty() {
        return None;
    }
    // Collected first: a stream over a borrowing closure would not be `Send` for every
    // lifetime, and the handler's future must be.
    let lookups: Vec<Fut> = asks
        .iter()
        .map(|(k, (_, t))| resolve(k.clone(), *t))
        .collect();
    let answers: Vec<Result<Value, String>> =
        stream::iter(lookups).buffered(CONCURRENT).collect().await;
    let mut items = items_mut(&mut doc, lists);
    for ((indexes, _), answer) in asks.values().zip(&answers) {
        for i in indexes {
            attach(items[*i], answer);
        }
    }
    serde_json::to_vec(&doc).ok()
}

/// The items of a body, as `plumbline_ingest::map::items` reads them: the array itself,
/// the array under one of `lists`, or the body as one item.
fn items_mut<'a>(doc: &'a mut Value, lists: &[&str]) -> Vec<&'a mut Value> {
    let key = lists
        .iter()
        .find(|k| doc.get(**k).is_some_and(Value::is_array));
    match (doc, key) {
        (Value::Array(a), _) => a.iter_mut().collect(),
        (Value::Object(o), Some(k)) => match o.get_mut(*k) {
            Some(Value::Array(a)) => a.iter_mut().collect(),
            _ => Vec::new(),
        },
        (doc, _) => vec![doc],
    }
}

/// Counts an item whose delivery already carried what it names.
fn skipped<K>(api: &Api) -> Option<(K, bool)> {
    api.count(Outcome::Skipped);
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_are_read_as_the_adapters_read_them() {
        let mut page = json!({"auditLogs": [{"a": 1}, {"a": 2}], "pg": {}});
        assert_eq!(items_mut(&mut page, &["auditLogs"]).len(), 2);
        let mut list = json!([{"a": 1}]);
        assert_eq!(items_mut(&mut list, &["auditLogs"]).len(), 1);
        let mut one = json!({"eventName": "x"});
        items_mut(&mut one, &["auditLogs"])[0]["seen"] = json!(true);
        assert_eq!(one["seen"], true);
    }

    #[test]
    fn nothing_is_on_by_default() {
        let e = Enrichment::new(&SourcesConfig::default());
        assert!(!e.is_on(Source::N8n) && !e.is_on(Source::Make));
        assert!(e.counts().is_empty());
    }
}

//! One source's API as enrichment calls it: a base URL, the credential header (marked
//! sensitive, never logged, never part of an error or an event), a timeout, a token bucket
//! and a cache of answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue, ACCEPT};
use serde_json::Value;

use plumbline_event::Source;
use plumbline_ingest::map::at;

/// How long an answer may serve later events that name the same thing without changing
/// it (an activation right after the save that fetched it).
const FRESH: Duration = Duration::from_secs(30);
/// Answers kept per source; the oldest goes first.
const CACHE_ENTRIES: usize = 1024;
/// Largest answer read (a workflow with pinned data can be large; its nodes are not).
const MAX_ANSWER: usize = 8 << 20;

/// What became of one look-up (`plumbline_enrich_requests_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Fetched from the source's API.
    Ok,
    /// Answered from the cache.
    Cached,
    /// Timeout, connection refused, an HTTP error, not JSON, not the documented shape, or
    /// over the local rate limit.
    Failed,
    /// Not looked up: the delivery already carried it (a relay attached it).
    Skipped,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::Cached,
        Outcome::Failed,
        Outcome::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Cached => "cached",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// What differs between the sources' APIs, beyond their configuration.
pub struct Shape {
    pub source: Source,
    /// Dropped from the end of a configured base URL, so `https://eu1.make.com/api/v2`
    /// works like `https://eu1.make.com` (paths are absolute).
    pub api_prefix: &'static str,
    /// The credential header, and what goes before the credential in it (`Token `).
    pub header: &'static str,
    pub scheme: &'static str,
}

/// A source's `api_*` keys.
pub struct Settings<'a> {
    pub base_url: &'a str,
    pub credential: &'a str,
    pub timeout_ms: u64,
    pub per_minute: u32,
}

/// One look-up: a path below the base URL and what makes a cached answer good for it.
pub struct Lookup {
    pub path: String,
    /// The version the event names (n8n's `versionId` / `activeVersionId`): an answer
    /// that is that version serves it whatever its age.
    pub version: Option<String>,
    /// The event says the thing changed (created, updated): only an answer of the version
    /// it names serves it, anything else is fetched anew. Otherwise (an activation) an
    /// answer younger than [`FRESH`] serves.
    pub changed: bool,
    /// A dotted path the answer must hold to be of use (`nodes`, `response.blueprint`):
    /// otherwise the look-up failed and nothing is cached.
    pub expect: &'static str,
    /// The versions an answer is (cached under each).
    pub versions: fn(&Value) -> Vec<String>,
}

impl Lookup {
    pub fn new(path: String, expect: &'static str) -> Self {
        Lookup {
            path,
            version: None,
            changed: false,
            expect,
            versions: |_| Vec::new(),
        }
    }
}

/// One source's API client.
pub struct Api {
    pub source: Source,
    base: String,
    auth: (HeaderName, HeaderValue),
    http: reqwest::Client,
    timeout_ms: u64,
    bucket: Mutex<Bucket>,
    cache: Mutex<HashMap<String, Cached>>,
    counts: [AtomicU64; 4],
}

struct Cached {
    value: Value,
    fetched: Instant,
}

impl Api {
    /// `None` when no base URL is configured (enrichment off for the source).
    pub fn new(shape: &Shape, s: Settings) -> Option<Api> {
        let base = s.base_url.trim().trim_end_matches('/');
        let base = base.strip_suffix(shape.api_prefix).unwrap_or(base);
        if base.is_empty() {
            return None;
        }
        let mut value = HeaderValue::from_str(&format!("{}{}", shape.scheme, s.credential)).ok()?;
        value.set_sensitive(true);
        let timeout = Duration::from_millis(s.timeout_ms.max(1));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("plumbline/", env!("CARGO_PKG_VERSION")))
            .build()
            .ok()?;
        Some(Api {
            source: shape.source,
            base: base.to_string(),
            auth: (HeaderName::from_static(shape.header), value),
            http,
            timeout_ms: s.timeout_ms,
            bucket: Mutex::new(Bucket::new(s.per_minute)),
            cache: Mutex::default(),
            counts: Default::default(),
        })
    }

    /// The label events carry when their facts came from this API (`n8n-api`).
    pub fn label(&self) -> String {
        format!("{}-api", self.source)
    }

    pub fn count(&self, outcome: Outcome) {
        self.counts[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn counts(&self) -> [(Outcome, u64); 4] {
        Outcome::ALL.map(|o| (o, self.counts[o as usize].load(Ordering::Relaxed)))
    }

    /// The answer at `l.path`, from the cache when it is good for `l`, else fetched.
    /// Errors name the request and what went wrong, never the base URL or the credential.
    pub async fn get(&self, l: &Lookup) -> Result<Value, String> {
        if let Some(v) = self.cached(l) {
            self.count(Outcome::Cached);
            return Ok(v);
        }
        let result = self.fetch(l).await;
        match &result {
            Ok(v) => {
                self.count(Outcome::Ok);
                self.keep(l, v);
            }
            Err(e) => {
                self.count(Outcome::Failed);
                tracing::warn!(source = %self.source, error = %e, "enrichment failed; the event is stored without it");
            }
        }
        result
    }

    fn cached(&self, l: &Lookup) -> Option<Value> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = l
            .version
            .as_ref()
            .and_then(|v| cache.get(&versioned(&l.path, v)))
        {
            return Some(c.value.clone());
        }
        let c = cache.get(&l.path).filter(|_| !l.changed)?;
        (c.fetched.elapsed() < FRESH).then(|| c.value.clone())
    }

    fn keep(&self, l: &Lookup, v: &Value) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let keys = std::iter::once(l.path.clone()).chain(
            (l.versions)(v)
                .into_iter()
                .map(|ver| versioned(&l.path, &ver)),
        );
        for key in keys {
            if cache.len() >= CACHE_ENTRIES && !cache.contains_key(&key) {
                let oldest = cache
                    .iter()
                    .min_by_key(|(_, c)| c.fetched)
                    .map(|(k, _)| k.clone());
                cache.remove(&oldest.unwrap_or_default());
            }
            let entry = Cached {
                value: v.clone(),
                fetched: Instant::now(),
            };
            cache.insert(key, entry);
        }
    }

    async fn fetch(&self, l: &Lookup) -> Result<Value, String> {
        let what = format!(
            "{} API: GET {}",
            self.source,
            l.path.split('?').next().unwrap_or("")
        );
        let fail = |why: &str| format!("{what}: {why}");
        if !self.bucket.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(fail("over the local rate limit (api_requests_per_minute)"));
        }
        let response = self
            .http
            .get(format!("{}{}", self.base, l.path))
            .header(self.auth.0.clone(), self.auth.1.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| fail(&self.describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            let hint = match status.as_u16() {
                401 | 403 => " (the API credential was refused)",
                404 => " (not found)",
                429 => " (the source's rate limit)",
                _ => "",
            };
            return Err(fail(&format!("HTTP {}{hint}", status.as_u16())));
        }
        let bytes = read_capped(response)
            .await
            .map_err(|e| fail(&self.describe(&e)))?
            .ok_or_else(|| fail(&format!("answer larger than {MAX_ANSWER} bytes")))?;
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|_| fail("the answer is not JSON"))?;
        if at(&v, l.expect).is_none() {
            return Err(fail(&format!("the answer has no `{}`", l.expect)));
        }
        Ok(v)
    }

    /// A transport error in words of our own: reqwest's text names the URL.
    fn describe(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            format!("timed out after {} ms", self.timeout_ms)
        } else if e.is_connect() {
            "cannot connect".into()
        } else {
            "the request failed".into()
        }
    }
}

fn versioned(path: &str, version: &str) -> String {
    format!("{path}@{version}")
}

/// The body, or `None` when it is larger than [`MAX_ANSWER`].
async fn read_capped(mut r: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = r.chunk().await? {
        if out.len() + chunk.len() > MAX_ANSWER {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

/// A token bucket holding a minute's worth of look-ups: a burst after a quiet spell goes
/// through, a sustained flood is held to the rate.
struct Bucket {
    per_minute: u32,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(per_minute: u32) -> Self {
        Bucket {
            per_minute,
            tokens: per_minute as f64,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let capacity = self.per_minute as f64;
        let refill = self.last.elapsed().as_secs_f64() * capacity / 60.0;
        self.tokens = (self.tokens + refill).min(capacity);
        self.last = Instant::now();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A path segment with everything but unreserved characters percent-encoded, so an id
/// from a payload cannot walk to another endpoint (`../`, `?`).
pub fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect::<String>()
        .replace("..", "%2E%2E")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_minute_at_once_then_the_rate() {
        let mut b = Bucket::new(3);
        assert!(b.take() && b.take() && b.take());
        assert!(!b.take());
        b.last -= Duration::from_secs(20);
        assert!(b.take());
        assert!(!b.take());
        let mut free = Bucket::new(0);
        assert!((0..1000).all(|_| free.take()));
    }

    #[test]
    fn ids_stay_one_path_segment() {
        assert_eq!(segment("Wf3kQ9zLx2"), "Wf3kQ9zLx2");
        assert_eq!(segment("../admin?x=1"), "%2E%2E%2Fadmin%3Fx%3D1");
        assert_eq!(segment(".."), "%2E%2E");
    }

    fn api(base: &str) -> Option<Api> {
        let shape = Shape {
            source: Source::N8n,
            api_prefix: "/api/v1",
            header: "x-n8n-api-key",
            scheme: "",
        };
        let settings = Settings {
            base_url: base,
            credential: "k",
            timeout_ms: 100,
            per_minute: 0,
        };
        Api::new(&shape, settings)
    }

    #[test]
    fn an_empty_base_url_is_off_and_api_prefixes_are_dropped() {
        assert!(api("").is_none());
        assert_eq!(
            api("https://n8n.example.com/").unwrap().base,
            "https://n8n.example.com"
        );
        assert_eq!(
            api("https://n8n.example.com/api/v1/").unwrap().base,
            "https://n8n.example.com"
        );
    }

    #[test]
    fn a_change_is_looked_up_anew_unless_it_names_a_version_already_seen() {
        let a = api("http://127.0.0.1:9").unwrap();
        let mut l = Lookup::new("/api/v1/workflows/w".into(), "nodes");
        l.versions = |v| vec![v["versionId"].as_str().unwrap_or("").to_string()];
        a.keep(&l, &serde_json::json!({"versionId": "v1", "nodes": []}));
        assert!(a.cached(&l).is_some(), "an activation right after");
        l.changed = true;
        assert!(a.cached(&l).is_none(), "an update");
        l.version = Some("v1".into());
        assert!(a.cached(&l).is_some(), "that very version");
        l.version = Some("v2".into());
        assert!(a.cached(&l).is_none());
        a.cache.lock().unwrap().get_mut(&l.path).unwrap().fetched -= FRESH;
        l.changed = false;
        assert!(a.cached(&l).is_none(), "too old");
    }
}

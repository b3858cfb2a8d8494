//! A thin OpenAI-compatible chat-completions client (OpenAI, vLLM, llama.cpp server,
//! Ollama): one POST to `<base_url>/chat/completions` per try, within limits a shared
//! endpoint expects from a polite caller.
//!
//! - at most `max_concurrent` calls in flight and `calls_per_minute` started per minute;
//! - 429: wait what `Retry-After` (or `retry-after-ms`) says, then try again;
//! - 5xx, 408, timeouts and connection errors: back off exponentially and try again;
//! - every try is recorded (status, response, its sha256) for the audit trail;
//! - all of it within the caller's deadline: nothing waits past it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::{sha256_hex, LlmConfig};
use plumbline_alert::now;
use plumbline_event::redact;

/// Largest response body read; a summary is a few KiB.
const MAX_RESPONSE_BYTES: usize = 2 << 20;
/// Largest response text kept in the audit trail (the hash covers the whole body).
const MAX_KEPT_RESPONSE: usize = 256 << 10;
const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const MINUTE: Duration = Duration::from_secs(60);

/// One HTTP try, as the audit trail shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Try {
    pub at: String,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Why the try failed (timeout, connection, status), if it did.
    pub error: Option<String>,
    /// What the server asked us to wait (429), milliseconds.
    pub retry_after_ms: Option<u64>,
    /// The response body (cut at 256 KiB; the hash covers all of it).
    pub response: Option<String>,
    pub response_sha256: Option<String>,
    pub elapsed_ms: u64,
}

/// A successful call's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The message content (to be validated).
    Content(String),
    /// The model declined (`message.refusal`, or `finish_reason: content_filter`).
    Refusal(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("the summary time budget ran out {0}")]
    Budget(String),
    #[error("rate limited (HTTP 429) and the server's Retry-After of {retry_after_ms} ms does not fit in the remaining budget or attempts")]
    RateLimited { retry_after_ms: u64 },
    #[error("HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("no answer within {0} ms")]
    Timeout(u64),
    #[error("connection failed: {0}")]
    Transport(String),
    #[error("the response is not a chat completion: {0}")]
    Malformed(String),
}

/// Every try of one call and how it ended.
#[derive(Debug, Clone)]
pub struct Call {
    pub tries: Vec<Try>,
    pub result: Result<Reply, CallError>,
}

pub struct ChatClient {
    http: reqwest::Client,
    url: String,
    api_key: Option<String>,
    timeout: Duration,
    max_attempts: u32,
    permits: Semaphore,
    pacer: Option<Mutex<Pacer>>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the LLM HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

impl ChatClient {
    /// The API key is read once, here, from the variable `config.api_key_env` names
    /// (looked up with `env`: the process environment, or a test's).
    pub fn new(
        config: &LlmConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ChatClient, ClientError> {
        let api_key = env(config.api_key_env.trim())
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty());
        if api_key.is_none() {
            tracing::info!(
                var = %config.api_key_env,
                "no LLM API key in the environment: calls carry no Authorization header"
            );
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("plumbline/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_millis(config.timeout_ms))
            .build()?;
        Ok(ChatClient {
            http,
            url: config.completions_url(),
            api_key,
            timeout: Duration::from_millis(config.timeout_ms),
            max_attempts: config.max_attempts.max(1),
            permits: Semaphore::new(config.max_concurrent.max(1)),
            pacer: (config.calls_per_minute > 0)
                .then(|| Mutex::new(Pacer::new(config.calls_per_minute as usize))),
        })
    }

    /// Sends `body` (a complete request) until it is answered, refused, fails for good,
    /// or `deadline` passes.
    pub async fn complete(&self, body: &str, deadline: Instant) -> Call {
        let mut tries = Vec::new();
        let mut attempt = 0u32;
        let mut backoff = BACKOFF_START;
        loop {
            attempt += 1;
            if let Err(e) = self.wait_for_slot(deadline).await {
                return Call {
                    tries,
                    result: Err(e),
                };
            }
            let (t, outcome) = self.try_once(body, deadline).await;
            tries.push(t);
            let wait = match outcome {
                Outcome::Done(result) => return Call { tries, result },
                Outcome::RetryAfter(ms) => {
                    let wait = ms
                        .map(Duration::from_millis)
                        .unwrap_or(backoff)
                        .max(Duration::from_millis(1));
                    if attempt >= self.max_attempts || Instant::now() + wait >= deadline {
                        return Call {
                            tries,
                            result: Err(CallError::RateLimited {
                                retry_after_ms: wait.as_millis() as u64,
                            }),
                        };
                    }
                    wait
                }
                Outcome::Transient(e) => {
                    if attempt >= self.max_attempts || Instant::now() + backoff >= deadline {
                        return Call {
                            tries,
                            result: Err(e),
                        };
                    }
                    backoff
                }
            };
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Takes a rate-limit slot and waits for it (within the deadline).
    async fn wait_for_slot(&self, deadline: Instant) -> Result<(), CallError> {
        let Some(pacer) = &self.pacer else {
            return Ok(());
        };
        let at = pacer
            .lock()
            .expect("pacer")
            .reserve(Instant::now(), deadline)
            .ok_or_else(|| {
                CallError::Budget("waiting for a slot under llm.calls_per_minute".into())
            })?;
        tokio::time::sleep_until(at.into()).await;
        Ok(())
    }

    async fn try_once(&self, body: &str, deadline: Instant) -> (Try, Outcome) {
        let started = Instant::now();
        let mut t = Try {
            at: now(),
            status: None,
            error: None,
            retry_after_ms: None,
            response: None,
            response_sha256: None,
            elapsed_ms: 0,
        };
        let outcome = self.exchange(body, deadline, &mut t).await;
        t.elapsed_ms = started.elapsed().as_millis() as u64;
        if let Outcome::Done(Err(e)) | Outcome::Transient(e) = &outcome {
            t.error = Some(e.to_string());
        }
        if let Outcome::RetryAfter(_) = &outcome {
            t.error = Some("rate limited (HTTP 429)".into());
        }
        (t, outcome)
    }

    async fn exchange(&self, body: &str, deadline: Instant, t: &mut Try) -> Outcome {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::Done(Err(CallError::Budget("before the call".into())));
        }
        let _permit = match tokio::time::timeout(left, self.permits.acquire()).await {
            Ok(Ok(p)) => p,
            _ => {
                return Outcome::Done(Err(CallError::Budget(
                    "waiting for a free call under llm.max_concurrent".into(),
                )))
            }
        };
        let per_call = self
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()))
            .max(Duration::from_millis(1));
        let mut req = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body.to_string())
            .timeout(per_call);
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(k);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Transient(transport_error(e, per_call)),
        };
        let status = resp.status().as_u16();
        t.status = Some(status);
        let retry_after = retry_after_ms(resp.headers());
        let bytes = match read_limited(resp).await {
            Ok(b) => b,
            Err(ReadError::TooLarge) => {
                return Outcome::Done(Err(CallError::Malformed(format!(
                    "response larger than {MAX_RESPONSE_BYTES} bytes"
                ))))
            }
            Err(ReadError::Http(e)) => return Outcome::Transient(transport_error(e, per_call)),
        };
        t.response_sha256 = Some(sha256_hex(&bytes));
        let text = String::from_utf8_lossy(&bytes);
        t.response = Some(if text.len() > MAX_KEPT_RESPONSE {
            let mut end = MAX_KEPT_RESPONSE;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…[cut]", &text[..end])
        } else {
            text.to_string()
        });
        match status {
            200..=299 => Outcome::Done(parse_reply(&bytes)),
            429 => {
                t.retry_after_ms = retry_after;
                Outcome::RetryAfter(retry_after)
            }
            408 | 500..=599 => Outcome::Transient(CallError::Http {
                status,
                body: excerpt(&text),
            }),
            _ => Outcome::Done(Err(CallError::Http {
                status,
                body: excerpt(&text),
            })),
        }
    }
}

enum Outcome {
    Done(Result<Reply, CallError>),
    /// 429, with the server's wait if it gave one.
    RetryAfter(Option<u64>),
    Transient(CallError),
}

enum ReadError {
    TooLarge,
    Http(reqwest::Error),
}

async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Http)? {
        if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ReadError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn transport_error(e: reqwest::Error, limit: Duration) -> CallError {
    if e.is_timeout() {
        CallError::Timeout(limit.as_millis() as u64)
    } else {
        let cause = std::error::Error::source(&e).map(|s| s.to_string());
        let text = e.without_url().to_string();
        let detail = cause.map(|s| format!("{text}: {s}")).unwrap_or(text);
        CallError::Transport(redact::text(&detail).unwrap_or(detail))
    }
}

fn excerpt(s: &str) -> String {
    let cut: String = s.chars().take(300).collect();
    redact::text(&cut).unwrap_or(cut)
}

/// `retry-after-ms` (OpenAI), else `Retry-After` as seconds or an HTTP date.
pub fn retry_after_ms(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(ms.ceil() as u64);
        }
    }
    let v = get("retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).ceil() as u64);
    }
    let at = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let ms = (at - time::OffsetDateTime::now_utc()).whole_milliseconds();
    Some(ms.max(0) as u64)
}

/// The first choice's content, or its refusal.
pub fn parse_reply(body: &[u8]) -> Result<Reply, CallError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| CallError::Malformed(e.to_string()))?;
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| CallError::Malformed("no `choices[0]`".into()))?;
    let message = choice.get("message").unwrap_or(&Value::Null);
    if let Some(r) = message.get("refusal").and_then(Value::as_str) {
        if !r.trim().is_empty() {
            return Ok(Reply::Refusal(r.to_string()));
        }
    }
    if choice.get("finish_reason").and_then(Value::as_str) == Some("content_filter") {
        return Ok(Reply::Refusal(
            "stopped by the provider's content filter (finish_reason content_filter)".into(),
        ));
    }
    match message.get("content") {
        Some(Value::String(s)) => Ok(Reply::Content(s.clone())),
        _ => Err(CallError::Malformed(
            "no `choices[0].message.content` string".into(),
        )),
    }
}

/// At most `per_minute` call starts in any 60-second window: a start is given the earliest
/// time that keeps the window honest.
pub struct Pacer {
    per_minute: usize,
    /// Reserved start times, oldest first.
    starts: VecDeque<Instant>,
}

impl Pacer {
    pub fn new(per_minute: usize) -> Pacer {
        Pacer {
            per_minute: per_minute.max(1),
            starts: VecDeque::new(),
        }
    }

    /// Reserves the earliest start at or after `now`, or none if it would be after
    /// `deadline` (nothing is reserved then).
    pub fn reserve(&mut self, now: Instant, deadline: Instant) -> Option<Instant> {
        while self.starts.front().is_some_and(|s| *s + MINUTE <= now) {
            self.starts.pop_front();
        }
        let mut at = now;
        if let Some(last) = self.starts.back() {
            at = at.max(*last);
        }
        if self.starts.len() >= self.per_minute {
            at = at.max(self.starts[self.starts.len() - self.per_minute] + MINUTE);
        }
        if at > deadline {
            return None;
        }
        self.starts.push_back(at);
        Some(at)
    }
}

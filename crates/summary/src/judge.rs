//! Detectors' questions to the model (`plumbline:detector@0.2.0`'s `model.judge`), under
//! the host's control: the runtime hands each question here ([`ModelJudge`]) and gets an
//! answer at once — cached, `pending`, or why there is none. Asking happens off the
//! evaluation threads; when the model has answered (and the answer passed
//! [`parse_judgement`]), the trajectory is evaluated again and the detector finds the
//! answer cached.
//!
//! - **Redaction and fencing** as for summaries ([`ChatRequest::judge`]).
//! - **Budget**: `llm.judge_calls_per_hour` model calls per detector (0 turns judgements
//!   off); over it the answer is `unavailable`, counted, and the detector falls back.
//! - **Cache** by (detector, version, trajectory hash, question): the same question about
//!   the same story is asked once; bounded (`llm.judge_cache_entries`, oldest first).
//! - **Audit**: every call's exact request body, its tries and the outcome, per
//!   trajectory (`judge_audit` tree; `GET /v1/trajectories/{id}/judgements`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::client::{ChatClient, Reply, Try};
use super::request::ChatRequest;
use super::{sha256_hex, LlmConfig};
use plumbline_contract::{parse_judgement, Judgement, ModelAnswer};
use plumbline_store::{Store, StoreError};
use plumbline_trajectory::judge::{JudgeRequest, ModelJudge};

const HOUR: Duration = Duration::from_secs(3600);
/// Audit records kept per trajectory.
pub const KEEP_PER_TRAJECTORY: usize = 20;

/// One question put to the model, as the audit trail keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeRecord {
    pub at: String,
    pub detector: String,
    pub detector_version: String,
    pub trajectory_id: String,
    pub trajectory_hash: String,
    pub model: String,
    /// The exact request body sent (after redaction) and its hash.
    pub request: String,
    pub request_sha256: String,
    pub tries: Vec<Try>,
    /// `answered`, `refused: …` (the model's answer broke the rule), or the failure.
    pub outcome: String,
    pub judgement: Option<Judgement>,
}

/// The `judge_audit` tree: records keyed by trajectory, oldest first.
#[derive(Clone)]
pub struct JudgeAudit {
    db: sled::Db,
    records: sled::Tree,
}

impl JudgeAudit {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(JudgeAudit {
            db: store.db().clone(),
            records: store.db().open_tree("judge_audit")?,
        })
    }

    fn prefix(trajectory: &str) -> Vec<u8> {
        let mut k = trajectory.as_bytes().to_vec();
        k.push(0);
        k
    }

    pub fn record(&self, r: &JudgeRecord) -> Result<(), StoreError> {
        let mut key = Self::prefix(&r.trajectory_id);
        key.extend(self.db.generate_id()?.to_be_bytes());
        self.records
            .insert(key, serde_json::to_vec(r).expect("records serialise"))?;
        let keys: Vec<sled::IVec> = self
            .records
            .scan_prefix(Self::prefix(&r.trajectory_id))
            .keys()
            .filter_map(Result::ok)
            .collect();
        for k in keys
            .iter()
            .take(keys.len().saturating_sub(KEEP_PER_TRAJECTORY))
        {
            self.records.remove(k)?;
        }
        Ok(())
    }

    /// A trajectory's records, oldest first.
    pub fn for_trajectory(&self, trajectory: &str) -> Result<Vec<JudgeRecord>, StoreError> {
        self.records
            .scan_prefix(Self::prefix(trajectory))
            .values()
            .map(|v| {
                let v = v?;
                Ok(serde_json::from_slice(&v).expect("records deserialise"))
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
enum Cached {
    Asking,
    Done(ModelAnswer),
}

#[derive(Default)]
struct Book {
    answers: HashMap<String, Cached>,
    order: VecDeque<String>,
    /// Call starts in the last hour, per detector.
    calls: HashMap<String, VecDeque<Instant>>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct JudgeStats {
    pub asked: std::sync::atomic::AtomicU64,
    pub cached: std::sync::atomic::AtomicU64,
    pub over_budget: std::sync::atomic::AtomicU64,
    pub refused: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
}

/// The host's model judge (one per service; clones share it).
#[derive(Clone)]
pub struct LlmJudge(Arc<Inner>);

pub struct Inner {
    config: LlmConfig,
    client: Arc<ChatClient>,
    runtime: tokio::runtime::Handle,
    audit: JudgeAudit,
    book: Mutex<Book>,
    /// Told the trajectory id when an answer arrives (the stage evaluates it again).
    answered: Arc<dyn Fn(&str) + Send + Sync>,
    pub stats: JudgeStats,
}

impl LlmJudge {
    pub fn new(
        config: LlmConfig,
        client: Arc<ChatClient>,
        audit: JudgeAudit,
        runtime: tokio::runtime::Handle,
        answered: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> LlmJudge {
        LlmJudge(Arc::new(Inner {
            config,
            client,
            runtime,
            audit,
            book: Mutex::default(),
            answered,
            stats: JudgeStats::default(),
        }))
    }

    pub fn audit(&self) -> &JudgeAudit {
        &self.0.audit
    }

    pub fn stats(&self) -> &JudgeStats {
        &self.0.stats
    }
}

impl Inner {
    fn key(r: &JudgeRequest) -> String {
        let q = serde_json::to_string(&r.question).expect("questions serialise");
        sha256_hex(
            format!(
                "{}\0{}\0{}\0{q}",
                r.detector, r.detector_version, r.trajectory_hash
            )
            .as_bytes(),
        )
    }

    fn remember(&self, book: &mut Book, key: String, c: Cached) {
        if book.answers.insert(key.clone(), c).is_none() {
            book.order.push_back(key);
            while book.order.len() > self.config.judge_cache_entries.max(1) {
                if let Some(old) = book.order.pop_front() {
                    book.answers.remove(&old);
                }
            }
        }
    }

    /// Takes a call from `detector`'s hourly budget, if any is left.
    fn spend(&self, book: &mut Book, detector: &str) -> bool {
        let now = Instant::now();
        let calls = book.calls.entry(detector.to_string()).or_default();
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= HOUR)
        {
            calls.pop_front();
        }
        if calls.len() >= self.config.judge_calls_per_hour as usize {
            return false;
        }
        calls.push_back(now);
        true
    }

    async fn ask(self: Arc<Self>, key: String, r: JudgeRequest) {
        use std::sync::atomic::Ordering::Relaxed;
        let request = ChatRequest::judge(
            &self.config,
            &r.detector,
            &r.question.instructions,
            &plumbline_event::redact::text(&r.trajectory).unwrap_or(r.trajectory.clone()),
            &r.events,
        );
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.config.budget_ms);
        let call = self
            .client
            .complete(&request.body, deadline.into_std())
            .await;
        let (answer, outcome, judgement) = match call.result {
            Ok(Reply::Content(text)) => {
                match parse_judgement(&text, &request.sent_ids, &self.config.model) {
                    Ok(j) => (
                        ModelAnswer::Ready(j.clone()),
                        "answered".to_string(),
                        Some(j),
                    ),
                    Err(e) => {
                        self.stats.refused.fetch_add(1, Relaxed);
                        let why = format!("the model's answer was refused: {e}");
                        (ModelAnswer::Unavailable(why), format!("refused: {e}"), None)
                    }
                }
            }
            Ok(Reply::Refusal(r)) => {
                self.stats.failed.fetch_add(1, Relaxed);
                (
                    ModelAnswer::Unavailable(format!("the model declined: {r}")),
                    format!("declined: {r}"),
                    None,
                )
            }
            Err(e) => {
                self.stats.failed.fetch_add(1, Relaxed);
                (
                    ModelAnswer::Unavailable(format!("the model could not be asked: {e}")),
                    e.to_string(),
                    None,
                )
            }
        };
        let record = JudgeRecord {
            at: plumbline_alert::now(),
            detector: r.detector.clone(),
            detector_version: r.detector_version.clone(),
            trajectory_id: r.trajectory.clone(),
            trajectory_hash: r.trajectory_hash.clone(),
            model: self.config.model.clone(),
            request: request.body.clone(),
            request_sha256: request.sha256.clone(),
            tries: call.tries,
            outcome,
            judgement,
        };
        if let Err(e) = self.audit.record(&record) {
            tracing::error!(trajectory = %r.trajectory, "judgement audit not written: {e}");
        }
        {
            let mut book = self.book.lock().expect("judge book");
            self.remember(&mut book, key.clone(), Cached::Done(answer));
            // A key asked before and evicted while asking is stored again here: fine.
        }
        (self.answered)(&r.trajectory);
    }
}

impl ModelJudge for LlmJudge {
    fn judge(&self, r: JudgeRequest) -> ModelAnswer {
        use std::sync::atomic::Ordering::Relaxed;
        let this = &self.0;
        let key = Inner::key(&r);
        let mut book = this.book.lock().expect("judge book");
        match book.answers.get(&key) {
            Some(Cached::Done(a)) => {
                this.stats.cached.fetch_add(1, Relaxed);
                return a.clone();
            }
            Some(Cached::Asking) => return ModelAnswer::Pending,
            None => {}
        }
        if !this.spend(&mut book, &r.detector) {
            this.stats.over_budget.fetch_add(1, Relaxed);
            return ModelAnswer::Unavailable(format!(
                "over the detector's budget of {} model calls per hour (llm.judge_calls_per_hour)",
                this.config.judge_calls_per_hour
            ));
        }
        this.remember(&mut book, key.clone(), Cached::Asking);
        drop(book);
        this.stats.asked.fetch_add(1, Relaxed);
        this.runtime.spawn(Arc::clone(this).ask(key, r));
        ModelAnswer::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;
    use crate::testing::{story, MockLlm, Step};
    use plumbline_contract::Question;

    struct Setup {
        judge: LlmJudge,
        answered: Arc<Mutex<Vec<String>>>,
        _dir: tempfile::TempDir,
    }

    fn setup(llm: &MockLlm, per_hour: u32) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config = LlmConfig {
            base_url: llm.base_url.clone(),
            model: "judge-model".into(),
            judge_calls_per_hour: per_hour,
            ..LlmConfig::default()
        };
        let client = Arc::new(ChatClient::new(&config, &|_| None).unwrap());
        let answered = Arc::new(Mutex::new(Vec::new()));
        let seen = answered.clone();
        let judge = LlmJudge::new(
            config,
            client,
            JudgeAudit::open(&store).unwrap(),
            tokio::runtime::Handle::current(),
            Arc::new(move |t: &str| seen.lock().unwrap().push(t.to_string())),
        );
        Setup {
            judge,
            answered,
            _dir: dir,
        }
    }

    fn request(hash: &str) -> JudgeRequest {
        let events: Vec<Arc<plumbline_event::Event>> = story().into_iter().map(Arc::new).collect();
        JudgeRequest {
            detector: "coding-agent.session-review".into(),
            detector_version: "0.1.0".into(),
            trajectory: "trj-1".into(),
            trajectory_hash: hash.into(),
            question: Question {
                instructions: "Rate this session.".into(),
                events: events.iter().map(|e| e.id.clone()).collect(),
            },
            events,
        }
    }

    async fn settled(s: &Setup, n: usize) {
        for _ in 0..200 {
            if s.answered.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no answer within 2 s");
    }

    #[tokio::test]
    async fn a_question_is_asked_once_and_its_answer_cached_by_trajectory_hash() {
        let llm = MockLlm::start(vec![Step::Judge(3)], None).await;
        let s = setup(&llm, 10);
        assert_eq!(s.judge.judge(request("h1")), ModelAnswer::Pending);
        // Asked again while the model thinks: still pending, not asked twice.
        assert_eq!(s.judge.judge(request("h1")), ModelAnswer::Pending);
        settled(&s, 1).await;
        assert_eq!(s.answered.lock().unwrap().as_slice(), ["trj-1"]);
        let ModelAnswer::Ready(j) = s.judge.judge(request("h1")) else {
            panic!("not answered")
        };
        assert_eq!((j.risk, j.model.as_str()), (3, "judge-model"));
        assert_eq!(j.evidence(), ["s1", "s2", "s3", "s4"]);
        assert_eq!(llm.calls(), 1);
        assert_eq!(s.judge.stats().cached.load(Relaxed), 1);
        // The exact request is in the audit trail, fenced and with the detector's words.
        let records = s.judge.audit().for_trajectory("trj-1").unwrap();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.request, llm.received()[0].body);
        assert_eq!(r.request_sha256, crate::sha256_hex(r.request.as_bytes()));
        assert!(r.request.contains("Rate this session.") && r.request.contains("UNTRUSTED-DATA"));
        assert_eq!(
            (r.outcome.as_str(), r.judgement.as_ref()),
            ("answered", Some(&j))
        );
    }

    #[tokio::test]
    async fn an_answer_citing_an_event_not_shown_is_refused_and_recorded() {
        let wrong =
            r#"{"risk": 3, "reasons": [{"text": "x", "evidence": ["evt-from-elsewhere"]}]}"#;
        let llm = MockLlm::start(vec![Step::Content(wrong.into())], None).await;
        let s = setup(&llm, 10);
        assert_eq!(s.judge.judge(request("h1")), ModelAnswer::Pending);
        settled(&s, 1).await;
        let ModelAnswer::Unavailable(why) = s.judge.judge(request("h1")) else {
            panic!("a wrong citation was accepted")
        };
        assert!(
            why.contains("\"evt-from-elsewhere\", an event it was not shown"),
            "{why}"
        );
        assert_eq!(s.judge.stats().refused.load(Relaxed), 1);
        let r = &s.judge.audit().for_trajectory("trj-1").unwrap()[0];
        assert!(
            r.outcome.starts_with("refused: ") && r.judgement.is_none(),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn over_its_hourly_budget_a_detector_is_told_so_without_a_call() {
        let llm = MockLlm::start(vec![], Some(Step::Judge(2))).await;
        let s = setup(&llm, 1);
        assert_eq!(s.judge.judge(request("h1")), ModelAnswer::Pending);
        let ModelAnswer::Unavailable(why) = s.judge.judge(request("h2")) else {
            panic!("over budget but asked")
        };
        assert!(why.contains("budget of 1 model calls per hour"), "{why}");
        settled(&s, 1).await;
        assert_eq!(llm.calls(), 1);
        let off = setup(&llm, 0);
        assert!(matches!(
            off.judge.judge(request("h3")),
            ModelAnswer::Unavailable(_)
        ));
    }
}

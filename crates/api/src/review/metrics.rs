//! `GET /metrics` (`read` scope; open on a loopback API without tokens): Prometheus text
//! with ingest counts by source, enrichment look-ups by source and outcome, the store's
//! group commits, trajectory evaluations and the event-to-evaluation latency histogram,
//! detector calls / failures (traps, deadlines, memory, contract) / quarantines, inline
//! verdicts on agents' pending calls and their answer time, summaries
//! and LLM tokens, outbox depth and response actions, alerts, labels and coverage.
//! Counters start at zero with the process.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::ReviewState;
use crate::auth::{scope, Require};
use crate::error::ApiResult;
use plumbline_metrics::Exposition;
use plumbline_review::labels::Outcome;

pub async fn metrics(
    _: Require<scope::Read>,
    State(s): State<ReviewState>,
) -> ApiResult<impl IntoResponse> {
    let body = tokio::task::spawn_blocking(move || render(&s))
        .await
        .map_err(crate::error::ApiError::internal)??;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}

/// Builds the exposition (blocking: it reads sled trees).
pub fn render(s: &ReviewState) -> Result<String, plumbline_store::StoreError> {
    let mut x = Exposition::new();
    let ingest = s.app.ingest.counters.snapshot();
    x.family(
        "plumbline_ingest_events_total",
        "counter",
        "Events accepted and stored, by source.",
    );
    for (src, n, _) in &ingest {
        x.sample(
            "plumbline_ingest_events_total",
            &[("source", src.as_str())],
            *n as f64,
        );
    }
    x.family(
        "plumbline_ingest_last_event_timestamp_seconds",
        "gauge",
        "Unix time of the last event accepted from each source (0: none since start).",
    );
    for (src, _, last) in &ingest {
        x.sample(
            "plumbline_ingest_last_event_timestamp_seconds",
            &[("source", src.as_str())],
            *last as f64,
        );
    }
    x.family(
        "plumbline_enrich_requests_total",
        "counter",
        "Look-ups of what audit events name in the source's own API, by source and outcome: ok (fetched), cached, failed (timeout, HTTP error, not JSON, over the local rate limit; the event is stored without it), skipped (the delivery carried it).",
    );
    for (src, outcome, n) in s.app.enrich.counts() {
        x.sample(
            "plumbline_enrich_requests_total",
            &[("source", src.as_str()), ("outcome", outcome)],
            n as f64,
        );
    }
    let w = &s.app.ingest.writer().stats;
    x.single(
        "plumbline_store_group_commits_total",
        "counter",
        "Group commits written by the store.",
        w.groups.load(Ordering::Relaxed) as f64,
    );
    x.single(
        "plumbline_store_flushes_total",
        "counter",
        "Durable flushes of the store.",
        w.flushes.load(Ordering::Relaxed) as f64,
    );
    x.single(
        "plumbline_store_duplicates_total",
        "counter",
        "Events not stored because their id was already stored (idempotent ingest).",
        w.duplicates.load(Ordering::Relaxed) as f64,
    );
    let t = &s.app.trajectories.stats;
    x.single(
        "plumbline_trajectory_events_total",
        "counter",
        "Events applied to trajectories.",
        t.events.load(Ordering::Relaxed) as f64,
    );
    x.single(
        "plumbline_trajectory_evaluations_total",
        "counter",
        "Trajectory evaluations (detectors run over a changed trajectory).",
        t.evaluations.load(Ordering::Relaxed) as f64,
    );
    x.single(
        "plumbline_trajectory_evaluations_skipped_total",
        "counter",
        "Evaluations skipped because the trajectory had not changed.",
        t.skipped_unchanged.load(Ordering::Relaxed) as f64,
    );
    x.single(
        "plumbline_trajectory_backlog",
        "gauge",
        "Events stored but not yet in a trajectory, plus evaluations queued (ingest answers 503 above [ingest] max_backlog).",
        s.app.trajectories.backlog() as f64,
    );
    x.single(
        "plumbline_evaluation_lag_seconds",
        "gauge",
        "How long the oldest stored change has waited to be evaluated (ingest answers 503 above [ingest] max_lag_ms).",
        s.app.trajectories.lag().as_secs_f64(),
    );
    x.histogram(
        "plumbline_evaluation_latency_seconds",
        "From the first unevaluated change of a trajectory to its evaluation being recorded.",
        &t.event_to_alert,
    );
    if let Some(gate) = &s.app.verdicts {
        gate.stats.render(&mut x);
    }
    if let Some(judge) = &s.app.judge {
        let j = judge.stats();
        x.family(
            "plumbline_model_judgements_total",
            "counter",
            "Detectors' questions to the language model (model.judge), by what became of them.",
        );
        for (outcome, c) in [
            ("asked", &j.asked),
            ("cached", &j.cached),
            ("over_budget", &j.over_budget),
            ("refused", &j.refused),
            ("failed", &j.failed),
        ] {
            x.sample(
                "plumbline_model_judgements_total",
                &[("outcome", outcome)],
                c.load(Ordering::Relaxed) as f64,
            );
        }
    }
    let deadline = s.review.config.deadline_ms as f64 / 1000.0;
    x.single(
        "plumbline_evaluation_deadline_seconds",
        "gauge",
        "The evaluation deadline ([review] deadline_ms).",
        deadline,
    );
    if let Some(rt) = &s.runtime {
        // Incremental (0.2.0) detectors' state: bounded by [runtime] state_total_mib; an
        // eviction costs its trajectory one replay.
        let (state_bytes, evicted) = rt.state_usage();
        x.single(
            "plumbline_detector_state_bytes",
            "gauge",
            "State incremental detectors keep per trajectory, in memory (bounded by [runtime] state_total_mib).",
            state_bytes as f64,
        );
        x.single(
            "plumbline_detector_state_evicted_total",
            "counter",
            "Detector states evicted under [runtime] state_total_mib (each makes its trajectory's next call a replay).",
            evicted as f64,
        );
        let status = rt.status();
        let families: [(&str, &str, &str); 5] = [
            ("plumbline_detector_calls_total", "counter", "Detector calls (analyze)."),
            (
                "plumbline_detector_failures_total",
                "counter",
                "Detector calls that failed: trap, deadline, memory cap, contract violation or detector error.",
            ),
            ("plumbline_detector_findings_total", "counter", "Findings returned by detectors."),
            (
                "plumbline_detector_skipped_total",
                "counter",
                "Trajectories not offered to a detector because they did not touch its interests.",
            ),
            (
                "plumbline_detector_quarantined",
                "gauge",
                "1 while the detector is quarantined after repeated failures.",
            ),
        ];
        for (name, kind, help) in families {
            x.family(name, kind, help);
            for d in &status {
                let v = match name {
                    "plumbline_detector_calls_total" => d.health.calls as f64,
                    "plumbline_detector_failures_total" => d.health.failures as f64,
                    "plumbline_detector_findings_total" => d.health.findings as f64,
                    "plumbline_detector_skipped_total" => d.health.skipped as f64,
                    _ => d.health.quarantine.is_some() as u8 as f64,
                };
                x.sample(name, &[("detector", &d.name), ("version", &d.version)], v);
            }
        }
    }
    if let Some(sum) = &s.summaries {
        let st = sum.stats();
        x.single(
            "plumbline_llm_http_tries_total",
            "counter",
            "HTTP tries sent to the summary model (calls, including retries).",
            st.http_tries.load(Ordering::Relaxed) as f64,
        );
        x.family(
            "plumbline_summaries_total",
            "counter",
            "Alert summaries by how they were made.",
        );
        for (how, n) in [
            ("llm", &st.llm),
            ("cached", &st.cached),
            ("fallback", &st.fallback),
        ] {
            x.sample(
                "plumbline_summaries_total",
                &[("provenance", how)],
                n.load(Ordering::Relaxed) as f64,
            );
        }
        x.single(
            "plumbline_llm_refusals_total",
            "counter",
            "Summaries the model refused to write.",
            st.refusals.load(Ordering::Relaxed) as f64,
        );
        x.single(
            "plumbline_llm_invalid_answers_total",
            "counter",
            "Model answers rejected by validation (schema, citations).",
            st.invalid_answers.load(Ordering::Relaxed) as f64,
        );
        x.single(
            "plumbline_summaries_in_progress",
            "gauge",
            "Alerts whose summary is being produced or queued.",
            sum.in_progress() as f64,
        );
    }
    let u = &s.review.llm_usage;
    x.family(
        "plumbline_llm_tokens_total",
        "counter",
        "Tokens the summary model reported using (its `usage`), the cost of the summaries.",
    );
    x.sample(
        "plumbline_llm_tokens_total",
        &[("kind", "prompt")],
        u.prompt_tokens.load(Ordering::Relaxed) as f64,
    );
    x.sample(
        "plumbline_llm_tokens_total",
        &[("kind", "completion")],
        u.completion_tokens.load(Ordering::Relaxed) as f64,
    );
    let ob = s.app.routing.dispatcher().status();
    x.single(
        "plumbline_outbox_depth",
        "gauge",
        "Deliveries not yet acknowledged by their destination.",
        ob.pending as f64,
    );
    x.family(
        "plumbline_outbox_deliveries",
        "gauge",
        "Outbox deliveries by destination and state.",
    );
    for (name, d) in &ob.destinations {
        for (state, n) in [
            ("pending", d.pending),
            ("held", d.held),
            ("retrying", d.retrying),
            ("delivered", d.delivered),
            ("failed", d.failed),
        ] {
            x.sample(
                "plumbline_outbox_deliveries",
                &[("destination", name), ("state", state)],
                n as f64,
            );
        }
    }
    let actions = s.app.routing.responder.list()?;
    x.family(
        "plumbline_response_actions",
        "gauge",
        "Response actions by state (pending ones wait for a reviewer).",
    );
    for state in ["pending", "approved", "denied", "expired", "done", "failed"] {
        let n = actions
            .iter()
            .filter(|a| {
                serde_json::to_value(a.state)
                    .ok()
                    .and_then(|v| v.as_str().map(|x| x == state))
                    .unwrap_or(false)
            })
            .count();
        x.sample("plumbline_response_actions", &[("state", state)], n as f64);
    }
    let mut alerts = std::collections::BTreeMap::<(u8, String), u64>::new();
    for a in s.app.alerts.all() {
        let st = serde_json::to_value(a.status)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        *alerts.entry((a.severity, st)).or_default() += 1;
    }
    x.family(
        "plumbline_alerts",
        "gauge",
        "Alerts by severity and status.",
    );
    for ((sev, st), n) in &alerts {
        x.sample(
            "plumbline_alerts",
            &[("severity", &sev.to_string()), ("status", st)],
            *n as f64,
        );
    }
    x.family(
        "plumbline_review_labels_total",
        "counter",
        "Labels recorded by reviewers, by outcome.",
    );
    for (o, n) in s.review.labels.counts() {
        x.sample(
            "plumbline_review_labels_total",
            &[("outcome", Outcome::as_str(o))],
            n as f64,
        );
    }
    let detectors = super::watches(s);
    let cov = s.review.coverage.report(
        time::OffsetDateTime::now_utc().unix_timestamp(),
        detectors.as_deref(),
        &t.event_to_alert,
    );
    x.family(
        "plumbline_source_silent",
        "gauge",
        "1 while a source has been quiet beyond its usual gap.",
    );
    for src in &cov.sources {
        if src.state != "never" {
            x.sample(
                "plumbline_source_silent",
                &[("source", src.source)],
                (src.state == "silent") as u8 as f64,
            );
        }
    }
    if let Some(v) = cov.evaluations.share {
        x.single(
            "plumbline_evaluations_within_deadline_ratio",
            "gauge",
            "Share of evaluations recorded within the evaluation deadline.",
            v,
        );
    }
    if let Some(v) = cov.high_risk.coverage {
        x.single(
            "plumbline_high_risk_coverage_ratio",
            "gauge",
            "High-risk events of the last 24 h read by an active detector, times the on-time share.",
            v,
        );
    }
    Ok(x.finish())
}

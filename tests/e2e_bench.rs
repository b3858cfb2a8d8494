//! `plumbline bench --quick --json` end to end: the real binary starts its own throwaway
//! servers, runs every measurement at small counts and prints one JSON object. Checks that
//! every figure is there as a number, the counts are the ones asked for, and every planted
//! force push raised its alert — never how fast anything was (no timing assertions).

use std::process::Command;

use serde_json::Value;

const FIGURES: &[&str] = &[
    "detector_wasm_us_10",
    "detector_native_us_10",
    "detector_ratio_10",
    "detector_wasm_us_100",
    "detector_native_us_100",
    "detector_ratio_100",
    "detector_wasm_us_1000",
    "detector_native_us_1000",
    "detector_ratio_1000",
    "incremental_wasm_us_10",
    "incremental_native_us_10",
    "incremental_ratio_10",
    "incremental_wasm_us_100",
    "incremental_native_us_100",
    "incremental_ratio_100",
    "incremental_wasm_us_1000",
    "incremental_native_us_1000",
    "incremental_ratio_1000",
    "ingest_eps_batch1",
    "ingest_busy_batch1",
    "ingest_eps_batch100",
    "ingest_busy_batch100",
    "ingest_eps_batch1000",
    "ingest_busy_batch1000",
    "steady1000_achieved_eps",
    "steady1000_eval_p50_ms",
    "steady1000_eval_p99_ms",
    "steady1000_alert_p50_ms",
    "steady1000_alert_p99_ms",
    "steady1000_alerts_missing",
    "steady1000_busy",
    "steady5000_achieved_eps",
    "steady5000_eval_p50_ms",
    "steady5000_eval_p99_ms",
    "steady5000_alert_p50_ms",
    "steady5000_alert_p99_ms",
    "steady5000_alerts_missing",
    "steady5000_busy",
    "burst_events",
    "burst_ingest_s",
    "burst_drain_s",
    "burst_busy",
    "rss_events",
    "rss_mib",
    "rss_backlog",
    "rss_lag_s",
    "rss_drained_mib",
    "stop_s",
    "pack_swap_events_lost",
    "pack_swap_skipped",
    "pack_swap_twice",
    "pack_swaps",
    "pack_swap_p50_ms",
    "pack_swap_max_ms",
    "pack_swap_busy",
];

#[test]
fn quick_bench_reports_every_figure_as_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args(["bench", "--quick", "--json", "--burst-events", "3000"])
        .env("PLUMBLINE_LOG", "warn")
        .output()
        .expect("run plumbline bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "plumbline bench failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().expect("a JSON line");
    let v: Value = serde_json::from_str(line).expect("the last line is JSON");

    for key in FIGURES {
        assert!(
            v[key].is_number(),
            "{key} is not a number: {} (not measured: {})",
            v[key],
            v["not_measured"][key]
        );
    }
    assert_eq!(v["quick"], true);
    // The counts asked for are the counts used.
    assert_eq!(v["burst_events"], 3000.0);
    assert_eq!(v["rss_events"], 5000.0);
    // Each phase's planted force pushes to main raised their alerts.
    assert_eq!(v["steady1000_alerts_missing"], 0.0);
    assert_eq!(v["steady5000_alerts_missing"], 0.0);
    // The ratio is the two calls' times divided, not a figure of its own.
    let ratio =
        v["detector_wasm_us_100"].as_f64().unwrap() / v["detector_native_us_100"].as_f64().unwrap();
    assert!((v["detector_ratio_100"].as_f64().unwrap() - ratio).abs() < 1e-9 * ratio.max(1.0));
    // Every probe event sent during the pack swaps was evaluated exactly once.
    assert!(v["pack_swaps"].as_f64().unwrap() >= 1.0, "{v}");
    assert_eq!(v["pack_swap_skipped"], 0.0, "{v}");
    assert_eq!(v["pack_swap_twice"], 0.0, "{v}");
}

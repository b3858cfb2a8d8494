//! One detector call on a 50-event trajectory: in the WASM sandbox (fresh pooled instance,
//! epoch deadline, memory cap, contract checks) versus the same detector logic native.
//! Needs the components from scripts/build-detectors.sh.
//!
//! cargo bench -p plumbline --features bench --bench runtime

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use plumbline_runtime::{DetectorSet, Runtime};
use plumbline_sdk::Detector as _;
use plumbline_trajectory::Evaluator;

fn component(name: &str) -> PathBuf {
    plumbline::bench::detector::component(name)
        .unwrap_or_else(|| panic!("{name} missing: run scripts/build-detectors.sh"))
}

fn bench(c: &mut Criterion) {
    let t = plumbline::bench::detector::trajectory(50);
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(
        plumbline::config::Config::defaults().runtime,
        Some(cache.path().to_path_buf()),
    )
    .unwrap();
    let rust = runtime
        .load_file(&component("example_export_after_grant.wasm"))
        .unwrap();
    let python = runtime
        .load_file(&component("example_python_force_push.wasm"))
        .unwrap();
    let rust_set = DetectorSet::new(vec![rust]).unwrap();
    runtime.swap(rust_set.clone());
    assert_eq!(
        runtime.evaluate(&t).findings.len(),
        1,
        "the bench trajectory fires"
    );

    let mut g = c.benchmark_group("detector call, 50-event trajectory");
    g.bench_function("wasm: example.export-after-grant (Rust)", |b| {
        b.iter(|| runtime.evaluate_on(&rust_set, &t))
    });

    // The fixed cost of a sandboxed call (store, pooled instance, deadline, contract
    // checks): the same detector on a one-event trajectory it must still analyse.
    let mut one = t.clone();
    one.events.truncate(11); // up to and including the grant
    one.events.drain(..10);
    g.bench_function("wasm: example.export-after-grant (Rust), 1 event", |b| {
        b.iter(|| runtime.evaluate_on(&rust_set, &one))
    });

    // Native: the same detector crate through the SDK, on the SDK's plain types.
    let sdk_t: plumbline_sdk::Trajectory =
        serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
    let info = example_export_after_grant::ExportAfterGrant::info();
    let cx = plumbline_sdk::Context::native(&info, &Default::default(), t.end);
    g.bench_function("native: example.export-after-grant (Rust)", |b| {
        b.iter(|| {
            example_export_after_grant::ExportAfterGrant
                .analyze(&sdk_t, &cx)
                .unwrap()
        })
    });

    // The Python detector never matches this trajectory's actions; force a call by
    // giving it a force push so the interpreter's cost is measured.
    let mut py_t = t.clone();
    let mut push = (*py_t.events[20]).clone();
    push.action = "git.push.force".into();
    push.resource = "refs/heads/main".into();
    py_t.events[20] = Arc::new(push);
    let python_set = DetectorSet::new(vec![python]).unwrap();
    assert_eq!(runtime.evaluate_on(&python_set, &py_t).findings.len(), 1);
    g.bench_function("wasm: example.force-push-protected (Python)", |b| {
        b.iter(|| runtime.evaluate_on(&python_set, &py_t))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);

//! Cost of adding one event to the open trajectories, after N events have already been
//! assembled. The book only touches the event's own actor and system windows (bounded by
//! `max_events`), so the cost should stay flat as N grows.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use plumbline::config::Config;
use plumbline_event::{parse_event, Event};
use plumbline_trajectory::window::{Book, Changes, WindowRules};

fn event(i: u64) -> Event {
    // 400 actors, 120 systems, one event every 50 ms of event time.
    let t = time::OffsetDateTime::from_unix_timestamp(1_764_000_000 + (i / 20) as i64).unwrap();
    parse_event(serde_json::json!({
        "id": format!("e{i}"), "time": plumbline_event::format_time(t), "source": "github",
        "actor": {"id": format!("actor-{}", i % 400), "type": "human"},
        "system": format!("repo-{}", i % 120), "action": "git.push",
        "attributes": {"branch": "main", "commits": 3},
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let rules = WindowRules::from_config(&Config::defaults().trajectory);
    let mut group = c.benchmark_group("trajectory_add_event");
    for prior in [1_000u64, 100_000, 1_000_000] {
        let mut book = Book::new(rules.clone());
        let mut changes = Changes::default();
        for i in 0..prior {
            book.apply(Arc::new(event(i)), &mut changes);
            if i % 10_000 == 0 {
                book.close_expired(rules.window);
                changes = Changes::default();
            }
        }
        for s in book.sessions_mut() {
            s.dirty_since = None;
        }
        book.close_expired(rules.window);
        let mut next = prior;
        group.bench_with_input(BenchmarkId::from_parameter(prior), &prior, |b, _| {
            b.iter_batched(
                || {
                    next += 1;
                    Arc::new(event(next))
                },
                |e| {
                    let mut ch = Changes::default();
                    book.apply(e, &mut ch);
                    ch
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

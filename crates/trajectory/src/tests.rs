//! Trajectory assembly: windows, renames, bounds and the drift views.

use std::sync::Arc;

use super::window::{Book, Changes, WindowRules};
use super::*;
use crate::testing::{ev, six_step_story, MIN};
use plumbline_event::Event;

fn rules(max: usize) -> WindowRules {
    WindowRules::from_config(&TrajectoryConfig {
        max_events: max,
        ..TrajectoryConfig::default()
    })
}

fn book_of(events: &[Event], max: usize) -> Book {
    let mut b = Book::new(rules(max));
    let mut ch = Changes::default();
    for e in events {
        b.apply(Arc::new(e.clone()), &mut ch);
    }
    b
}

fn actor_sessions(b: &Book, actor: &str) -> Vec<Vec<String>> {
    let mut v: Vec<(i64, Vec<String>)> = b
        .sessions()
        .filter(|s| s.kind == TrajectoryKind::Actor && s.key == actor)
        .map(|s| {
            (
                s.first_time,
                s.entries.iter().map(|e| e.event.id.clone()).collect(),
            )
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, ids)| ids).collect()
}

#[test]
fn arrival_order_does_not_change_the_trajectory_or_its_hash() {
    let events: Vec<Event> = (0..12)
        .map(|i| ev(&format!("e{i}"), "ada", "repo", "git.push", i * 7 * MIN))
        .collect();
    let in_order = book_of(&events, 1000);
    let mut shuffled = events.clone();
    shuffled.reverse();
    shuffled.swap(2, 9);
    let out_of_order = book_of(&shuffled, 1000);
    assert_eq!(
        actor_sessions(&in_order, "ada"),
        actor_sessions(&out_of_order, "ada")
    );
    // Same id and hash for every view, whatever the arrival order.
    let views = |b: &Book| {
        let mut v: Vec<(TrajectoryKind, String, String)> = b
            .sessions()
            .map(|s| (s.kind, s.id.clone(), s.hash()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(views(&in_order).len(), 2);
    assert_eq!(views(&in_order), views(&out_of_order));
    let actor = in_order
        .sessions()
        .find(|s| s.kind == TrajectoryKind::Actor)
        .unwrap();
    assert_eq!(
        actor.id,
        window::trajectory_id(TrajectoryKind::Actor, "ada", events[0].time_nanos(), "e0")
    );
}

#[test]
fn an_event_earlier_than_the_first_renames_the_trajectory_and_says_so() {
    let mut b = Book::new(rules(1000));
    let mut ch = Changes::default();
    b.apply(Arc::new(ev("b", "ada", "r", "git.push", 10 * MIN)), &mut ch);
    let first = ch.changed.clone();
    assert!(ch.renamed.is_empty());
    let mut ch = Changes::default();
    b.apply(Arc::new(ev("a", "ada", "r", "git.push", 0)), &mut ch);
    // Both views (actor and system) moved their origin: each old id names its successor,
    // which is what changed, and the book answers only to the new ids.
    assert_eq!(ch.renamed.len(), 2);
    for old in &first {
        let new = ch.current_id(old);
        assert_ne!(new, old);
        assert!(ch.changed.iter().any(|c| c == new));
        assert!(b.get(old).is_none());
        assert_eq!(b.get(new).unwrap().entries.len(), 2);
    }
    assert!(!ch.changed.iter().any(|c| first.contains(c)));
}

#[test]
fn a_bridging_event_renames_the_later_trajectory_into_the_earlier() {
    let mut b = book_of(
        &[
            ev("a", "ada", "r", "git.push", 0),
            ev("c", "ada", "r", "git.push", 100 * MIN),
        ],
        1000,
    );
    let ids = |b: &Book| {
        let mut v: Vec<String> = b
            .sessions()
            .filter(|s| s.kind == TrajectoryKind::Actor)
            .map(|s| s.id.clone())
            .collect();
        v.sort();
        v
    };
    let before = ids(&b);
    assert_eq!(before.len(), 2);
    let mut ch = Changes::default();
    b.apply(
        Arc::new(ev("late", "ada", "r", "git.push", 50 * MIN)),
        &mut ch,
    );
    let after = ids(&b);
    assert_eq!(after.len(), 1);
    let survivor = &after[0];
    assert!(before.contains(survivor), "the earlier one survives");
    let gone = before.iter().find(|i| *i != survivor).unwrap();
    assert_eq!(ch.current_id(gone), survivor.as_str());
}

#[test]
fn a_gap_longer_than_the_window_opens_a_new_trajectory_and_a_late_event_bridges() {
    let a = ev("a", "ada", "r", "git.push", 0);
    let b = ev("b", "ada", "r", "git.push", 60 * MIN); // exactly at the boundary: same window
    let c = ev("c", "ada", "r", "git.push", 121 * MIN); // 61 minutes after b: new window
    let book = book_of(&[a.clone(), b.clone(), c.clone()], 1000);
    assert_eq!(
        actor_sessions(&book, "ada"),
        vec![vec!["a", "b"], vec!["c"]]
    );
    // A late event between b and c joins both windows into one.
    let late = ev("late", "ada", "r", "git.push", 90 * MIN);
    let book = book_of(&[a, b, c, late], 1000);
    assert_eq!(
        actor_sessions(&book, "ada"),
        vec![vec!["a", "b", "late", "c"]]
    );
}

#[test]
fn a_grant_extends_the_window_to_24_hours() {
    let grant = ev("g", "ada", "vault", "credential.scope.increased", 0);
    let later = ev("x", "ada", "vault", "secret.read", 23 * 60 * MIN);
    let book = book_of(&[grant.clone(), later.clone()], 1000);
    assert_eq!(actor_sessions(&book, "ada"), vec![vec!["g", "x"]]);
    let plain = ev("p", "ada", "vault", "secret.read", 0);
    let book = book_of(&[plain, later], 1000);
    assert_eq!(actor_sessions(&book, "ada").len(), 2);
    let too_late = ev("y", "ada", "vault", "secret.read", 24 * 60 * MIN + 1);
    assert_eq!(
        actor_sessions(&book_of(&[grant, too_late], 1000), "ada").len(),
        2
    );
}

#[test]
fn the_bound_drops_the_oldest_and_counts_them() {
    let events: Vec<Event> = (0..10)
        .map(|i| ev(&format!("e{i:02}"), "bot", "r", "git.push", i))
        .collect();
    let mut shuffled = events.clone();
    shuffled.reverse();
    for order in [events, shuffled] {
        let book = book_of(&order, 4);
        let s = book
            .sessions()
            .find(|s| s.kind == TrajectoryKind::Actor)
            .unwrap();
        let ids: Vec<&str> = s.entries.iter().map(|e| e.event.id.as_str()).collect();
        assert_eq!(ids, vec!["e06", "e07", "e08", "e09"]);
        assert_eq!(s.dropped, 6);
        assert_eq!(s.snapshot().dropped, 6);
    }
}

#[test]
fn six_step_story_is_one_actor_trajectory_in_order() {
    let mut story = six_step_story();
    story.swap(0, 4); // arrival order does not matter
    let book = book_of(&story, 1000);
    assert_eq!(
        actor_sessions(&book, "mallory"),
        vec![vec!["s1", "s2", "s3", "s4", "s5", "s6"]]
    );
}

#[test]
fn the_drift_view_keeps_weeks_of_widenings_and_nothing_else() {
    let day = 24 * 60 * MIN;
    let events = vec![
        ev("w1", "erin", "acme/api", "member.added", 0),
        ev("x1", "erin", "acme/api", "git.push", 60),
        ev("w2", "erin", "acme/api", "team.permission.changed", 9 * day),
        ev("w3", "erin", "acme/web", "deploy_key.created", 18 * day),
        ev("w4", "erin", "acme/api", "app.installed", 27 * day),
    ];
    let book = book_of(&events, 1000);
    let drift: Vec<Vec<String>> = book
        .sessions()
        .filter(|s| s.kind == TrajectoryKind::ActorDrift && s.key == "erin")
        .map(|s| s.entries.iter().map(|e| e.event.id.clone()).collect())
        .collect();
    assert_eq!(drift, vec![vec!["w1", "w2", "w3", "w4"]]);
    // The rolling windows are cut as usual: weeks apart, these are separate stories.
    assert_eq!(actor_sessions(&book, "erin").len(), 4);
    // A change more than 30 days after the last one starts a new drift view.
    let mut later = events.clone();
    later.push(ev("w5", "erin", "acme/api", "member.added", 58 * day));
    let book = book_of(&later, 1000);
    assert_eq!(
        book.sessions()
            .filter(|s| s.kind == TrajectoryKind::ActorDrift)
            .count(),
        2
    );
}

/// A far-future event (ingest refuses them now; a store written before may hold one) does
/// not move the watermark past the wall clock, so real trajectories stay open and grow.
#[test]
fn a_far_future_event_does_not_close_every_real_trajectory() {
    let mut b = Book::new(rules(1000));
    let mut ch = Changes::default();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() - 1_764_000_000;
    b.apply(
        Arc::new(ev("p1", "eve", "vault", "secret.read", now)),
        &mut ch,
    );
    let mut future = ev("x", "mallory", "vault", "secret.read", 0);
    future.time = time::macros::datetime!(2262-01-01 0:00 UTC);
    b.apply(Arc::new(future), &mut ch);
    let ceiling = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
        + b.rules.as_ref().unwrap().window;
    assert!(
        b.watermark <= ceiling,
        "the watermark ran ahead of the clock"
    );
    let closed = b.close_expired(b.rules.as_ref().unwrap().window);
    assert!(
        closed.iter().all(|s| s.key != "eve"),
        "eve's probe closed early"
    );
    b.apply(
        Arc::new(ev("p2", "eve", "vault", "secret.read", now + 60)),
        &mut ch,
    );
    assert_eq!(actor_sessions(&b, "eve"), vec![vec!["p1", "p2"]]);
}

/// Retention forgets closed trajectories past the cutoff and every rename chain that leads
/// to them; open trajectories and the renames of kept ones stay.
#[test]
fn retention_forgets_old_closed_trajectories_and_the_renames_to_them() {
    use super::persist::{TrajectoryRecord, TrajectoryStore};
    let dir = tempfile::tempdir().unwrap();
    let store = plumbline_store::Store::open(dir.path()).unwrap();
    let persist = TrajectoryStore::open(&store, rules(100)).unwrap();
    let header = |id: &str, end: i64, closed: bool| TrajectoryRecord {
        id: id.into(),
        kind: TrajectoryKind::Actor,
        key: "eve".into(),
        first_time: end,
        origin_id: None,
        start: end,
        end,
        closes_at: end,
        dropped: 0,
        hash: String::new(),
        closed,
        last_evaluated_hash: None,
        event_count: 1,
        actors: vec!["eve".into()],
        systems: vec![],
    };
    persist
        .put_records(&[
            header("trj-old", 100, true),
            header("trj-new", 300, true),
            header("trj-open", 100, false),
        ])
        .unwrap();
    let renames = [
        ("trj-a", "trj-old"),
        ("trj-b", "trj-a"),
        ("trj-c", "trj-new"),
    ];
    let renames: Vec<(String, String)> = renames
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    persist.aliases.record(&renames).unwrap();

    assert_eq!(
        persist.sweep_before(200).unwrap(),
        3,
        "one header, two renames"
    );
    let kept: Vec<String> = persist.records().map(|r| r.id).collect();
    assert_eq!(kept, ["trj-new", "trj-open"]);
    assert_eq!(persist.aliases.resolve("trj-b").unwrap(), None);
    assert_eq!(
        persist.aliases.resolve("trj-c").unwrap().as_deref(),
        Some("trj-new")
    );
    assert_eq!(persist.sweep_before(200).unwrap(), 0);
}

/// A pending event is judged on the trajectory it would join — the same id and hash as if
/// it had been applied — and the book is left as it was; an event already applied is not
/// counted twice, and an actor with no open window gets a trajectory of that event alone.
#[test]
fn a_preview_is_the_trajectory_the_event_would_join_without_changing_the_book() {
    let events: Vec<Event> = (0..5)
        .map(|i| {
            ev(
                &format!("p{i}"),
                "agent",
                "repo",
                "agent.tool.shell",
                i * MIN,
            )
        })
        .collect();
    let book = book_of(&events[..4], 1000);
    let pending = Arc::new(events[4].clone());
    let preview = book.preview(TrajectoryKind::Actor, &pending);
    assert_eq!(
        actor_sessions(&book, "agent"),
        vec![vec!["p0", "p1", "p2", "p3"]]
    );
    let applied = book_of(&events, 1000);
    let s = applied
        .sessions()
        .find(|s| s.kind == TrajectoryKind::Actor)
        .unwrap()
        .snapshot();
    assert_eq!((&preview.id, &preview.hash), (&s.id, &s.hash));
    let ids: Vec<&str> = preview.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["p0", "p1", "p2", "p3", "p4"]);
    // Already there: the same trajectory, not a doubled event.
    let again = applied.preview(TrajectoryKind::Actor, &pending);
    assert_eq!((again.events.len(), &again.hash), (5, &s.hash));
    // An earlier pending event becomes the origin, as applying it would make it.
    let early = Arc::new(ev("p-early", "agent", "repo", "agent.prompt", -MIN));
    let moved = book.preview(TrajectoryKind::Actor, &early);
    assert_eq!(moved.events[0].id, "p-early");
    assert_eq!(
        moved.id,
        book_of(
            &[events[..4].to_vec(), vec![(*early).clone()]].concat(),
            1000
        )
        .sessions()
        .find(|s| s.kind == TrajectoryKind::Actor)
        .unwrap()
        .id
    );
    // Bounded like the window: the oldest give way.
    let small = book_of(&events[..4], 3);
    let bounded = small.preview(TrajectoryKind::Actor, &pending);
    assert_eq!(bounded.events.len(), 3);
    assert_eq!(bounded.events.last().unwrap().id, "p4");
    let alone = Book::new(rules(1000)).preview(TrajectoryKind::Actor, &pending);
    assert_eq!(alone.events.len(), 1);
}

/// A snapshot shares the window's event list instead of copying it; a change after the
/// snapshot leaves the snapshot as it was (copy-on-write), in every arrival order, at the
/// bound and through a merge.
#[test]
fn a_snapshot_shares_the_event_list_and_a_later_change_does_not_touch_it() {
    let ids = |t: &Trajectory| t.events.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    let entry_ids = |s: &window::Session| {
        s.entries
            .iter()
            .map(|e| e.event.id.clone())
            .collect::<Vec<_>>()
    };
    let events: Vec<Event> = (0..8)
        .map(|i| ev(&format!("e{i}"), "ada", "repo", "git.push", i * MIN))
        .collect();
    let mut book = Book::new(rules(5));
    let mut ch = Changes::default();
    let actor = |b: &Book| {
        b.sessions()
            .find(|s| s.kind == TrajectoryKind::Actor)
            .unwrap()
            .id
            .clone()
    };
    // Odd minutes first, then even: late events land in the middle, then the bound drops.
    let order = events
        .iter()
        .skip(1)
        .step_by(2)
        .chain(events.iter().step_by(2));
    for e in order {
        book.apply(Arc::new(e.clone()), &mut ch);
        let id = actor(&book);
        let s = book.get(&id).unwrap();
        let (a, b) = (s.snapshot(), s.snapshot());
        assert!(Events::ptr_eq(&a.events, &b.events), "shared, not copied");
        assert_eq!(ids(&a), entry_ids(s));
        // The next event changes the window; the snapshot taken before stays as it was.
        let before = ids(&a);
        let next = ev(&format!("x-{}", e.id), "ada", "repo", "git.push", 30 * MIN);
        book.apply(Arc::new(next), &mut ch);
        assert_eq!(ids(&a), before);
        let s = book.get(&actor(&book)).unwrap();
        assert_eq!(ids(&s.snapshot()), entry_ids(s));
        assert!(!Events::ptr_eq(&a.events, &s.snapshot().events));
    }
    // A bridging event merges two windows: the merged list is the entries, in order.
    let actors = |b: &Book| {
        b.sessions()
            .filter(|s| s.kind == TrajectoryKind::Actor)
            .count()
    };
    let span = rules(5).window / 60_000_000_000;
    let far = ev("far", "ada", "repo", "git.push", (30 + span + 20) * MIN);
    book.apply(Arc::new(far), &mut ch);
    assert_eq!(actors(&book), 2);
    let bridge = ev("bridge", "ada", "repo", "git.push", (30 + span - 5) * MIN);
    book.apply(Arc::new(bridge), &mut ch);
    assert_eq!(actors(&book), 1, "the bridge merged the two windows");
    let s = book.get(&actor(&book)).unwrap();
    assert_eq!(ids(&s.snapshot()), entry_ids(s));
    assert_eq!(s.snapshot().events.last().unwrap().id, "far");
}

/// The remembered chunks give the hash a fresh computation gives, through events added
/// anywhere and dropped at the front; a change rehashes the chunks it touched, not all.
#[test]
fn the_chunk_memo_agrees_with_a_fresh_hash_and_rehashes_only_what_changed() {
    use crate::model::{trajectory_hash, ChunkMemo};
    let digest = |i: u64| -> [u8; 32] {
        sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(
            i.to_le_bytes(),
        ))
        .into()
    };
    let mut list: std::collections::VecDeque<(String, [u8; 32])> = Default::default();
    let mut memo = ChunkMemo::default();
    let fresh = |l: &std::collections::VecDeque<(String, [u8; 32])>| {
        trajectory_hash(l.iter().map(|(id, d)| (id.as_str(), d)))
    };
    let mut seen = std::collections::HashSet::new();
    // A deterministic walk: mostly appends, some inserts in the middle, a bound of 1,000.
    let mut x: u64 = 7;
    for i in 0..3_000u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let at = if x >> 60 == 0 && !list.is_empty() {
            (x as usize >> 8) % list.len()
        } else {
            list.len()
        };
        list.insert(at, (format!("e{i}"), digest(i)));
        if list.len() > 1_000 {
            list.pop_front();
        }
        let (h, hashed) = memo.hash_counting(list.iter().map(|(id, d)| (id.as_str(), d)));
        assert_eq!(h, fresh(&list), "step {i}");
        assert!(seen.insert(h), "every state its own hash (step {i})");
        if i > 0 {
            // The chunk the event joined (or the two it split) and, at the bound, the first.
            assert!(
                hashed <= 3,
                "step {i}: {hashed} chunks rehashed of {}",
                list.len()
            );
        }
    }
    // Nothing remembered: every chunk is hashed, to the same answer.
    let (h, hashed) =
        ChunkMemo::default().hash_counting(list.iter().map(|(id, d)| (id.as_str(), d)));
    assert_eq!(h, fresh(&list));
    assert!(hashed > 5, "{hashed}");
}

/// A change that arrives while an evaluation runs is what waits afterwards, from its own
/// arrival: the wait of a change already judged is not counted again (a trajectory that
/// changes during every evaluation reported twice its real lag).
#[test]
fn a_change_during_an_evaluation_waits_from_its_own_arrival() {
    let mut book = Book::new(rules(100));
    let mut ch = Changes::default();
    book.apply(Arc::new(ev("e1", "ada", "r", "git.push", 0)), &mut ch);
    let id = book
        .sessions()
        .find(|s| s.kind == TrajectoryKind::Actor)
        .unwrap()
        .id
        .clone();
    let first = book.get(&id).unwrap().dirty_since.expect("waiting");
    let v1 = book.get_mut(&id).unwrap().judging();
    std::thread::sleep(std::time::Duration::from_millis(2));
    book.apply(Arc::new(ev("e2", "ada", "r", "git.push", MIN)), &mut ch);
    let s = book.get_mut(&id).unwrap();
    assert_eq!(
        s.judged(v1),
        Some(first),
        "the judged change waited from e1"
    );
    let second = s.dirty_since.expect("e2 still waits");
    assert!(second > first, "from its own arrival");
    let v2 = s.judging();
    assert_eq!(s.judged(v2), Some(second));
    assert_eq!(s.dirty_since, None, "nothing waits");
    // A settle evaluation with nothing waiting observes nothing.
    let v3 = s.judging();
    assert_eq!(s.judged(v3), None);
}

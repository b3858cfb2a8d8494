//! What a detector reads: the rules that decide which trajectories the host offers it.
//!
//! A detector is called for a trajectory when it reads the trajectory's view
//! ([`reads_view`]) and at least one event of it comes from a source it reads with an
//! action it reads ([`reads_event`]).

use crate::types::{Info, TrajectoryKind};

/// True if `action` matches `pattern`: an exact action, `prefix.*` (the prefix itself or
/// anything below it), or `*`.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => {
            action == prefix
                || (action.starts_with(prefix)
                    && action.as_bytes().get(prefix.len()) == Some(&b'.'))
        }
        None => pattern == action,
    }
}

/// Whether a detector declaring `views` reads trajectories of `kind`. No views means the
/// rolling `actor` and `system` windows; a drift view goes only to the detectors that name
/// it, so one story never raises two alerts.
pub fn reads_view(views: &[TrajectoryKind], kind: TrajectoryKind) -> bool {
    if views.is_empty() {
        matches!(kind, TrajectoryKind::Actor | TrajectoryKind::System)
    } else {
        views.contains(&kind)
    }
}

/// Whether one event (its source and action) is of interest to a detector declaring
/// `sources` (exact; empty: all) and `actions` (see [`action_matches`]; empty: all).
pub fn reads_event(sources: &[String], actions: &[String], source: &str, action: &str) -> bool {
    (sources.is_empty() || sources.iter().any(|s| s == source))
        && (actions.is_empty() || actions.iter().any(|p| action_matches(p, action)))
}

impl Info {
    /// [`reads_view`] over this detector's declared views.
    pub fn reads_view(&self, kind: TrajectoryKind) -> bool {
        reads_view(&self.views, kind)
    }

    /// [`reads_event`] over this detector's declared sources and actions.
    pub fn reads_event(&self, source: &str, action: &str) -> bool {
        reads_event(&self.sources, &self.actions, source, action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TrajectoryKind as K;

    // From sdk/src/query.rs `action_patterns` and the runtime's interest filter `prefix_patterns`.
    #[test]
    fn action_patterns() {
        assert!(action_matches("git.push.*", "git.push.force"));
        assert!(action_matches("git.push.*", "git.push"));
        assert!(!action_matches("git.push.*", "git.pushy"));
        assert!(!action_matches("git.push", "git.push.force"));
        assert!(action_matches("*", "anything"));
        assert!(action_matches("credential.*", "credential.scope.increased"));
        assert!(!action_matches("credential.*", "credentials.read"));
        assert!(action_matches("*", "x"));
    }

    // From the runtime's interest filter.
    #[test]
    fn drift_views_go_only_to_detectors_that_ask_for_them() {
        assert!(reads_view(&[], K::Actor) && reads_view(&[], K::System));
        assert!(!reads_view(&[], K::ActorDrift) && !reads_view(&[], K::SystemDrift));
        let drift = [K::ActorDrift];
        assert!(reads_view(&drift, K::ActorDrift));
        assert!(!reads_view(&drift, K::Actor) && !reads_view(&drift, K::SystemDrift));
        let system = Info::new("t.x", "1", "").views(&[K::System]);
        assert!(system.reads_view(K::System) && !system.reads_view(K::Actor));
    }

    // From the runtime's interest filter `source_and_action_must_meet_in_one_event`.
    #[test]
    fn source_and_action_must_meet_in_one_event() {
        let events = [("github", "git.push"), ("vault", "secret.read")];
        let reads = |sources: &[&str], actions: &[&str]| {
            let s: Vec<String> = sources.iter().map(|x| x.to_string()).collect();
            let a: Vec<String> = actions.iter().map(|x| x.to_string()).collect();
            events
                .iter()
                .any(|(src, act)| reads_event(&s, &a, src, act))
        };
        assert!(reads(&[], &[]));
        assert!(reads(&["github"], &["git.*"]));
        assert!(!reads(&["github"], &["secret.read"]));
        assert!(reads(&[], &["secret.read"]));
        assert!(!reads(&["n8n"], &[]));
        assert!(!reads(&[], &["git.push.force"]));
    }
}

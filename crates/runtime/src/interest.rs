//! The interest filter: a detector is called only for trajectories holding at least one
//! event from a source it reads with an action it reads. Most trajectories touch few
//! detectors, so this is where most of the evaluation cost is saved.

use super::bindings::wit;

#[derive(Debug, Clone)]
pub struct Interest {
    sources: Vec<String>,
    actions: Vec<String>,
    /// Trajectory views read; empty means the rolling actor and system windows.
    views: Vec<wit::TrajectoryKind>,
}

impl Interest {
    pub fn of(info: &wit::DetectorInfo) -> Interest {
        Interest {
            sources: info.sources.clone(),
            actions: info.actions.clone(),
            views: info.views.clone(),
        }
    }

    /// Whether this detector reads trajectories of `kind` (a drift view goes only to the
    /// detectors that ask for it, so one story never raises two alerts).
    pub fn reads_view(&self, kind: plumbline_trajectory::TrajectoryKind) -> bool {
        use plumbline_trajectory::TrajectoryKind as K;
        let wanted = match kind {
            K::Actor => wit::TrajectoryKind::Actor,
            K::System => wit::TrajectoryKind::System,
            K::ActorDrift => wit::TrajectoryKind::ActorDrift,
            K::SystemDrift => wit::TrajectoryKind::SystemDrift,
        };
        if self.views.is_empty() {
            matches!(kind, K::Actor | K::System)
        } else {
            self.views.contains(&wanted)
        }
    }

    #[cfg(test)]
    pub fn matches(&self, t: &wit::Trajectory) -> bool {
        self.matches_any(
            t.events
                .iter()
                .map(|e| (e.source.as_str(), e.action.as_str())),
        )
    }

    /// On (source, action) pairs, so the host can decide before converting a trajectory.
    pub fn matches_any<'a>(&self, mut events: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
        events.any(|(source, action)| {
            (self.sources.is_empty() || self.sources.iter().any(|s| s == source))
                && (self.actions.is_empty()
                    || self.actions.iter().any(|p| action_matches(p, action)))
        })
    }
}

/// Same rule as the SDK's `action_matches`: exact, `prefix.*`, or `*`.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn traj(events: &[(&str, &str)]) -> wit::Trajectory {
        wit::Trajectory {
            id: "t".into(),
            kind: wit::TrajectoryKind::Actor,
            key: "a".into(),
            start: 0,
            end: 0,
            dropped: 0,
            hash: String::new(),
            events: events
                .iter()
                .map(|(source, action)| wit::Event {
                    id: format!("{source}-{action}"),
                    time: 0,
                    source: source.to_string(),
                    actor: wit::Actor {
                        id: "a".into(),
                        kind: wit::ActorKind::Human,
                        display: String::new(),
                    },
                    system: "s".into(),
                    action: action.to_string(),
                    resource: String::new(),
                    environment: wit::Environment::Unknown,
                    destination: None,
                    volume: None,
                    attributes: vec![],
                })
                .collect(),
        }
    }

    fn interest(sources: &[&str], actions: &[&str]) -> Interest {
        Interest {
            sources: sources.iter().map(|s| s.to_string()).collect(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
            views: vec![],
        }
    }

    #[test]
    fn drift_views_go_only_to_detectors_that_ask_for_them() {
        use plumbline_trajectory::TrajectoryKind as K;
        let plain = interest(&[], &[]);
        assert!(plain.reads_view(K::Actor) && plain.reads_view(K::System));
        assert!(!plain.reads_view(K::ActorDrift) && !plain.reads_view(K::SystemDrift));
        let drift = Interest {
            views: vec![wit::TrajectoryKind::ActorDrift],
            ..interest(&[], &[])
        };
        assert!(drift.reads_view(K::ActorDrift));
        assert!(!drift.reads_view(K::Actor) && !drift.reads_view(K::SystemDrift));
    }

    #[test]
    fn source_and_action_must_meet_in_one_event() {
        let t = traj(&[("github", "git.push"), ("vault", "secret.read")]);
        assert!(interest(&[], &[]).matches(&t));
        assert!(interest(&["github"], &["git.*"]).matches(&t));
        assert!(!interest(&["github"], &["secret.read"]).matches(&t));
        assert!(interest(&[], &["secret.read"]).matches(&t));
        assert!(!interest(&["n8n"], &[]).matches(&t));
        assert!(!interest(&[], &["git.push.force"]).matches(&t));
    }

    #[test]
    fn prefix_patterns() {
        assert!(action_matches("credential.*", "credential.scope.increased"));
        assert!(!action_matches("credential.*", "credentials.read"));
        assert!(action_matches("*", "x"));
    }
}

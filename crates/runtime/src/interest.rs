//! The interest filter: a detector is called only for trajectories holding at least one
//! event from a source it reads with an action it reads. Most trajectories touch few
//! detectors, so this is where most of the evaluation cost is saved.

use plumbline_contract as c;

/// What a detector reads (the contract's rules: `plumbline_contract::interest`).
#[derive(Debug, Clone)]
pub struct Interest {
    sources: Vec<String>,
    actions: Vec<String>,
    /// Trajectory views read; empty means the rolling actor and system windows.
    views: Vec<c::TrajectoryKind>,
}

impl Interest {
    pub fn of(info: &c::Info) -> Interest {
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
        let kind = match kind {
            K::Actor => c::TrajectoryKind::Actor,
            K::System => c::TrajectoryKind::System,
            K::ActorDrift => c::TrajectoryKind::ActorDrift,
            K::SystemDrift => c::TrajectoryKind::SystemDrift,
        };
        c::reads_view(&self.views, kind)
    }

    /// On (source, action) pairs, so the host can decide before converting a trajectory.
    pub fn matches_any<'a>(&self, mut events: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
        events.any(|(source, action)| c::reads_event(&self.sources, &self.actions, source, action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            views: vec![c::TrajectoryKind::ActorDrift],
            ..interest(&[], &[])
        };
        assert!(drift.reads_view(K::ActorDrift));
        assert!(!drift.reads_view(K::Actor) && !drift.reads_view(K::SystemDrift));
    }

    #[test]
    fn source_and_action_must_meet_in_one_event() {
        let t = [("github", "git.push"), ("vault", "secret.read")];
        let m = |i: Interest| i.matches_any(t.iter().copied());
        assert!(m(interest(&[], &[])));
        assert!(m(interest(&["github"], &["git.*"])));
        assert!(!m(interest(&["github"], &["secret.read"])));
        assert!(m(interest(&[], &["secret.read"])));
        assert!(!m(interest(&["n8n"], &[])));
        assert!(!m(interest(&[], &["git.push.force"])));
    }
}

//! New dependencies and connectors from places nobody vetted:
//! - a dependency added from a registry or host that is not on `known_registries` (a git
//!   URL, a tarball on a personal server, a bare IP, a paste site);
//! - an n8n community node package installed (it runs inside n8n, next to every stored
//!   credential) or a community node type used in a workflow, when the package is not on
//!   `known_packages`.
//!
//! Unknown hosts need review; bare IPs and catcher / paste hosts are urgent.
//! Read on actor trajectories (who added it).
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the findings raised so far (each
//! judged once, when its event arrives) and the names of the packages installed.

use plumbline_sdk::kept::{self, text};
use plumbline_sdk::*;

const REGISTRY: &str = "supply.unknown_registry";
const CONNECTOR: &str = "supply.community_connector";

/// n8n's own node packages; anything else is a community package.
const BUILT_IN_NODE_PREFIXES: [&str; 3] = ["n8n-nodes-base.", "@n8n/", "n8n-nodes-langchain."];

/// Most findings (and installed packages) kept in the state, the oldest dropped first:
/// 50 findings of about 600 bytes (a title is at most 200 characters, a next step quotes
/// at most two texts of the event, each cut by [`text`]) within three quarters of
/// [`kept::BUDGET`], 50 packages of about 100 bytes within the rest.
const MAX_KEPT: usize = 50;

/// What the detector remembers of a trajectory, each list in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    found: Vec<Found>,
    installed: Vec<Installed>,
}

/// A finding and the time and id of the one event it cites.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Found {
    t: i64,
    id: String,
    finding: Finding,
    /// A community node's package (its use is raised only if the package's installation
    /// is not on the trajectory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    package: Option<String>,
}

/// A package installation (vetted or not).
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Installed {
    t: i64,
    id: String,
    name: String,
}

kept::record!(Found, Installed);

#[derive(Default)]
pub struct UnknownSource;

impl IncrementalDetector for UnknownSource {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Settings>()?;
        Ok(())
    }

    fn info() -> Info {
        let info = Info::new(
            "supply-chain.unknown-source",
            "0.1.0",
            "Dependencies from unknown registries or hosts; community connectors in automation platforms",
        )
        .actions(&["dependency.added", "package.installed", "workflow.node.added"])
        .views(&[TrajectoryKind::Actor])
        .signals(&[REGISTRY, CONNECTOR])
        .config(
            "known_registries",
            "registry.npmjs.org,registry.yarnpkg.com,pypi.org,files.pythonhosted.org,crates.io,static.crates.io,index.crates.io,proxy.golang.org,sum.golang.org,repo.maven.apache.org,repo1.maven.org,plugins.gradle.org,rubygems.org,api.nuget.org,packagist.org,registry-1.docker.io,docker.io,ghcr.io,quay.io,gcr.io,public.ecr.aws",
            "Registries and hosts dependencies may come from (domains cover subdomains); add your internal mirror",
        )
        .config(
            "known_packages",
            "",
            "Community packages (comma-separated globs, e.g. `n8n-nodes-acme-*`) that were vetted",
        );
        destination::declare(info)
    }

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        if !new_events.is_empty() {
            let settings = cx.settings::<Settings>()?;
            let (mut found, mut installed) = (Vec::new(), Vec::new());
            for e in new_events {
                if e.is("package.installed") {
                    let name = attr_text(e, &["package.name"]).unwrap_or(&e.resource);
                    installed.push(Installed {
                        t: e.time,
                        id: e.id.clone(),
                        name: text(name),
                    });
                }
                if let Some((finding, package)) = judge(e, &settings) {
                    found.push(Found {
                        t: e.time,
                        id: e.id.clone(),
                        finding,
                        package,
                    });
                }
            }
            kept::fold(&mut seen.found, found, MAX_KEPT, kept::BUDGET * 3 / 4);
            kept::fold(&mut seen.installed, installed, MAX_KEPT, kept::BUDGET / 4);
        }
        // What left the trajectory goes with it.
        kept::prune(&mut seen.found, cx);
        kept::prune(&mut seen.installed, cx);
        // A community package installed here is raised once, not again at each node use
        // (whichever came first).
        Ok(seen
            .found
            .iter()
            .filter(|f| {
                f.package
                    .as_ref()
                    .is_none_or(|p| !seen.installed.iter().any(|i| &i.name == p))
            })
            .map(|f| f.finding.clone())
            .collect())
    }
}

/// The finding one event raises, if any, and for a community node's use the package it
/// comes from (its use is not raised when that package's installation is on the
/// trajectory).
fn judge(e: &Event, settings: &Settings) -> Option<(Finding, Option<String>)> {
    // An allow-list: exact case.
    let vetted = |name: &str| settings.packages.iter().any(|p| glob::matches(p, name));
    match e.action.as_str() {
        "dependency.added" => {
            let name = attr_text(e, &["package.name", "dependency.name"]).unwrap_or(&e.resource);
            if vetted(name) {
                return None;
            }
            let source = attr_text(
                e,
                &[
                    "package.source",
                    "package.registry",
                    "package.resolved",
                    "resolved",
                ],
            )
            .or(e.destination.as_deref())?;
            let (place, class) = settings.lists.classify(source)?;
            if class == DestinationClass::Known {
                return None;
            }
            let urgent = class.is_personal_or_anonymous();
            let version = attr_text(e, &["package.version", "dependency.version"]).unwrap_or("");
            let finding = Finding::new(
                REGISTRY,
                if urgent { Severity::Urgent } else { Severity::NeedsReview },
                title(format!(
                    "{} added dependency {name}{}{} from {} ({}) to {}",
                    who(e),
                    if version.is_empty() { "" } else { "@" },
                    version,
                    place.name(),
                    class.describe(),
                    e.system
                )),
            )
            .evidence([e])
            .score(if urgent { 0.9 } else { 0.65 })
            .next_step(format!(
                "Review {} and where {} got it from before it builds anywhere; pin it to a vetted registry or remove it",
                text(name),
                who(e)
            ));
            Some((finding, None))
        }
        "package.installed" => {
            let name = attr_text(e, &["package.name"]).unwrap_or(&e.resource);
            if vetted(name) {
                return None;
            }
            let nodes = attr_text(e, &["package.nodes"]).unwrap_or("");
            let finding = Finding::new(
                CONNECTOR,
                Severity::NeedsReview,
                title(format!(
                    "{} installed community package {name}{} on {}{}",
                    who(e),
                    attr_text(e, &["package.version"]).map(|v| format!("@{v}")).unwrap_or_default(),
                    e.system,
                    if nodes.is_empty() { String::new() } else { format!(" (nodes: {nodes})") }
                )),
            )
            .evidence([e])
            .score(0.7)
            .next_step(format!(
                "Check who publishes {} and what it does with credentials; uninstall it until vetted, then add it to known_packages",
                text(name)
            ));
            Some((finding, None))
        }
        // n8n's node types name their package; other platforms' modules (make.com's
        // `app:Module`) are not n8n packages.
        "workflow.node.added" if e.source == "n8n" => {
            let ty = e.attr_str("node.type").unwrap_or("");
            if ty.is_empty() || BUILT_IN_NODE_PREFIXES.iter().any(|p| ty.starts_with(p)) {
                return None;
            }
            let package = ty.rsplit_once('.').map_or(ty, |(p, _)| p);
            if vetted(package) {
                return None;
            }
            let finding = Finding::new(
                CONNECTOR,
                Severity::NeedsReview,
                title(format!(
                    "{} added community node {ty} to workflow {}",
                    who(e),
                    attr_text(e, &["workflow.name"]).unwrap_or(&e.system)
                )),
            )
            .evidence([e])
            .score(0.6)
            .next_step(format!(
                "Check who publishes {} and what the node sends where; replace it with a built-in node or vet it (known_packages)",
                text(package)
            ));
            Some((finding, Some(text(package))))
        }
        _ => None,
    }
}

/// The configuration, parsed once per detector instance.
struct Settings {
    /// The destination lists, with the known registries allow-listed.
    lists: Destinations,
    packages: Vec<String>,
}

impl FromConfig for Settings {
    fn from_config(cfg: &dyn ConfigSource) -> Result<Self, AnalyzeError> {
        let mut lists = Destinations::from_config(cfg);
        lists.known_domains.extend(cfg.list("known_registries"));
        Ok(Settings {
            lists,
            packages: cfg.list("known_packages"),
        })
    }
}

register_incremental_detector!(UnknownSource);

#[cfg(test)]
mod tests {
    plumbline_sdk::testing::incremental_fixture_tests!(super::UnknownSource);

    /// Many copies of one event with 500-byte ids and 8 KiB texts: the state stays under
    /// the host's bound (each call checks it), the answer under its 100 findings.
    #[test]
    fn state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-dependency-from-bare-ip.json");
        let found = feed::flood::<super::UnknownSource>(&f, "dep:2", 300);
        feed::newest_kept(&found);
    }
}

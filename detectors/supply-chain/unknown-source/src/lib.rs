//! New dependencies and connectors from places nobody vetted:
//! - a dependency added from a registry or host that is not on `known_registries` (a git
//!   URL, a tarball on a personal server, a bare IP, a paste site);
//! - an n8n community node package installed (it runs inside n8n, next to every stored
//!   credential) or a community node type used in a workflow, when the package is not on
//!   `known_packages`.
//!
//! Unknown hosts need review; bare IPs and catcher / paste hosts are urgent.
//! Read on actor trajectories (who added it).

use std::collections::BTreeSet;

use plumbline_sdk::*;

const REGISTRY: &str = "supply.unknown_registry";
const CONNECTOR: &str = "supply.community_connector";

/// n8n's own node packages; anything else is a community package.
const BUILT_IN_NODE_PREFIXES: [&str; 3] = ["n8n-nodes-base.", "@n8n/", "n8n-nodes-langchain."];

#[derive(Default)]
pub struct UnknownSource;

impl Detector for UnknownSource {
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

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let settings = cx.settings::<Settings>()?;
        let lists = &settings.lists;
        // An allow-list: exact case.
        let vetted = |name: &str| settings.packages.iter().any(|p| glob::matches(p, name));

        let mut findings = Vec::new();
        for e in t.with_action("dependency.added") {
            let name = attr_text(e, &["package.name", "dependency.name"]).unwrap_or(&e.resource);
            if vetted(name) {
                continue;
            }
            let Some(source) = attr_text(
                e,
                &[
                    "package.source",
                    "package.registry",
                    "package.resolved",
                    "resolved",
                ],
            )
            .or(e.destination.as_deref()) else {
                continue;
            };
            let Some((place, class)) = lists.classify(source) else {
                continue;
            };
            if class == DestinationClass::Known {
                continue;
            }
            let urgent = class.is_personal_or_anonymous();
            let version = attr_text(e, &["package.version", "dependency.version"]).unwrap_or("");
            findings.push(
                Finding::new(
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
                    "Review {name} and where {} got it from before it builds anywhere; pin it to a vetted registry or remove it",
                    who(e)
                )),
            );
        }

        // Community packages installed here, so their node uses are not raised twice.
        let mut installed: BTreeSet<&str> = BTreeSet::new();
        for e in t.with_action("package.installed") {
            let name = attr_text(e, &["package.name"]).unwrap_or(&e.resource);
            installed.insert(name);
            if vetted(name) {
                continue;
            }
            let nodes = attr_text(e, &["package.nodes"]).unwrap_or("");
            findings.push(
                Finding::new(
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
                    "Check who publishes {name} and what it does with credentials; uninstall it until vetted, then add it to known_packages"
                )),
            );
        }
        // n8n's node types name their package; other platforms' modules (make.com's
        // `app:Module`) are not n8n packages.
        for e in t
            .with_action("workflow.node.added")
            .filter(|e| e.source == "n8n")
        {
            let ty = e.attr_str("node.type").unwrap_or("");
            if ty.is_empty() || BUILT_IN_NODE_PREFIXES.iter().any(|p| ty.starts_with(p)) {
                continue;
            }
            let package = ty.rsplit_once('.').map_or(ty, |(p, _)| p);
            if vetted(package) || installed.contains(package) {
                continue;
            }
            findings.push(
                Finding::new(
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
                    "Check who publishes {package} and what the node sends where; replace it with a built-in node or vet it (known_packages)"
                )),
            );
        }
        Ok(findings)
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

register_detector!(UnknownSource);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::UnknownSource>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::UnknownSource>(FIXTURES);
    }
}

//! One TOML configuration: the embedded defaults (`host/config/default.toml`), then the
//! file given with `--config`, then `PLUMBLINE_<SECTION>_<KEY>` environment variables.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use plumbline_api::auth::{ApiToken, AuthConfig, Scope};

// Each source's section is owned by its adapter.
use plumbline_ingest::agents::AgentsConfig;
use plumbline_ingest::cloudtrail::CloudtrailConfig;
use plumbline_ingest::github::GithubConfig;
use plumbline_ingest::github_audit::GithubAuditConfig;
use plumbline_ingest::gitlab::GitlabConfig;
use plumbline_ingest::make::MakeConfig;
use plumbline_ingest::n8n::N8nConfig;
use plumbline_ingest::okta::OktaConfig;
use plumbline_ingest::openai::OpenaiConfig;
use plumbline_ingest::vault::VaultConfig;

/// The host's own sections; each stage crate carries the defaults of its own section.
const HOST_TOML: &str = include_str!("../config/default.toml");

/// The embedded default configuration: every section with its documentation.
pub fn default_toml() -> String {
    [
        HOST_TOML,
        plumbline_api::auth::DEFAULT_CONFIG,
        plumbline_api::limits::DEFAULT_CONFIG,
        plumbline_ingest::DEFAULT_CONFIG,
        plumbline_trajectory::DEFAULT_CONFIG,
        plumbline_verdict::DEFAULT_CONFIG,
        plumbline_runtime::DEFAULT_CONFIG,
        plumbline_summary::DEFAULT_CONFIG,
        plumbline_policy::DEFAULT_CONFIG,
        plumbline_delivery::DEFAULT_CONFIG,
        plumbline_review::DEFAULT_CONFIG,
        plumbline_cluster::DEFAULT_CONFIG,
    ]
    .join("\n")
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("config file {0} is not valid TOML: {1}")]
    Parse(String, toml::de::Error),
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("configuration is invalid: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub auth: AuthConfig,
    pub limits: plumbline_api::limits::LimitsConfig,
    pub ingest: plumbline_ingest::IngestConfig,
    pub trajectory: plumbline_trajectory::TrajectoryConfig,
    pub verdict: plumbline_verdict::VerdictConfig,
    pub github: GithubConfig,
    pub github_audit: GithubAuditConfig,
    pub gitlab: GitlabConfig,
    pub n8n: N8nConfig,
    pub make: MakeConfig,
    pub vault: VaultConfig,
    pub cloudtrail: CloudtrailConfig,
    pub okta: OktaConfig,
    pub openai: OpenaiConfig,
    pub agents: AgentsConfig,
    pub llm: plumbline_summary::LlmConfig,
    pub runtime: plumbline_runtime::RuntimeConfig,
    pub org: plumbline_runtime::Org,
    pub packs: plumbline_runtime::pack::PacksConfig,
    pub policy: plumbline_policy::PolicyConfig,
    pub delivery: plumbline_delivery::DeliveryConfig,
    pub review: plumbline_review::ReviewConfig,
    pub cluster: plumbline_cluster::ClusterConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    pub body_limit_bytes: usize,
    pub public_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub retention_days: u64,
    pub record_retention_days: u64,
    pub sweep_interval_secs: u64,
    pub fsync: bool,
    pub cache_mib: u64,
}

impl Config {
    /// Defaults, then `file`, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut value: toml::Table = toml::from_str(&default_toml())
            .map_err(|e| ConfigError::Parse("(embedded defaults)".into(), e))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::Read(path.to_path_buf(), e))?;
            let user: toml::Table = toml::from_str(&text)
                .map_err(|e| ConfigError::Parse(path.display().to_string(), e))?;
            plumbline_policy::model::layer(&mut value, user);
        }
        apply_env(&mut value, env)?;
        let mut config: Config = toml::Value::Table(value)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
        // Detectors see the organisation through the runtime (one copy, `[org]`).
        config.runtime.org = config.org.clone();
        // …and so does the CloudTrail adapter: a share with one of the company's own
        // accounts (disaster recovery included) is not "external".
        for account in &config.org.cloud_accounts {
            if !config.cloudtrail.org_accounts.contains(account) {
                config.cloudtrail.org_accounts.push(account.clone());
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Every source's section, for the adapters.
    pub fn sources(&self) -> plumbline_ingest::SourcesConfig {
        plumbline_ingest::SourcesConfig {
            github: self.github.clone(),
            github_audit: self.github_audit.clone(),
            gitlab: self.gitlab.clone(),
            n8n: self.n8n.clone(),
            make: self.make.clone(),
            vault: self.vault.clone(),
            cloudtrail: self.cloudtrail.clone(),
            okta: self.okta.clone(),
            openai: self.openai.clone(),
            agents: self.agents.clone(),
        }
    }

    /// This node's name in a cluster: `cluster.node`, or the host name and a digest of
    /// the data directory (stable across restarts, distinct per node on one host), reduced
    /// to what a JetStream key may hold.
    pub fn node_name(&self) -> String {
        use sha2::Digest;
        if !self.cluster.node.is_empty() {
            return self.cluster.node.clone();
        }
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "node".into());
        let dir = std::fs::canonicalize(&self.server.data_dir)
            .unwrap_or_else(|_| self.server.data_dir.clone());
        let digest = sha2::Sha256::digest(dir.to_string_lossy().as_bytes());
        format!("{}-{}", host.trim(), &hex::encode(digest)[..8])
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    }

    pub fn defaults() -> Config {
        Self::load_with_env(None, std::iter::empty()).expect("embedded defaults are valid")
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.llm.validate().map_err(ConfigError::Invalid)?;
        self.runtime.validate().map_err(ConfigError::Invalid)?;
        self.org.validate().map_err(ConfigError::Invalid)?;
        self.packs.validate().map_err(ConfigError::Invalid)?;
        self.review.validate().map_err(ConfigError::Invalid)?;
        self.trajectory.validate().map_err(ConfigError::Invalid)?;
        self.verdict.validate().map_err(ConfigError::Invalid)?;
        self.auth.validate().map_err(ConfigError::Invalid)?;
        self.vault.validate().map_err(ConfigError::Invalid)?;
        self.n8n.validate().map_err(ConfigError::Invalid)?;
        self.make.validate().map_err(ConfigError::Invalid)?;
        self.limits.validate().map_err(ConfigError::Invalid)?;
        self.cluster.validate().map_err(ConfigError::Invalid)?;
        Ok(())
    }
}

/// `PLUMBLINE_<SECTION>_<KEY>`: the section is matched against the known sections (so
/// keys may contain underscores: `PLUMBLINE_STORE_RETENTION_DAYS` → `store.retention_days`).
fn apply_env(
    value: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let sections: Vec<String> = value.keys().cloned().collect();
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix("PLUMBLINE_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        // The longest section that names the variable's key: `PLUMBLINE_GITHUB_AUDIT_TOKEN`
        // is `github_audit.token`, not a key `audit_token` of `[github]`.
        let Some(section) = sections
            .iter()
            .filter(|s| rest.starts_with(&format!("{s}_")))
            .filter(|s| {
                value
                    .get(s.as_str())
                    .and_then(|v| v.as_table())
                    .is_some_and(|t| t.contains_key(&rest[s.len() + 1..]))
            })
            .max_by_key(|s| s.len())
        else {
            continue;
        };
        let key = &rest[section.len() + 1..];
        let table = value
            .get_mut(section)
            .and_then(|v| v.as_table_mut())
            .expect("sections are tables");
        if !table.contains_key(key) {
            continue; // not a config key (e.g. PLUMBLINE_GITHUB_SECRET handled by its section when present)
        }
        let parsed = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
            Ok(mut t) => t.remove("v").expect("just parsed"),
            Err(_) => toml::Value::String(raw.clone()),
        };
        let parsed = match (table.get(key), parsed) {
            // A string key keeps the raw text even when it happens to parse as a number.
            (Some(toml::Value::String(_)), v) if !v.is_str() => toml::Value::String(raw.clone()),
            (_, v) => v,
        };
        if let (Some(old), new) = (table.get(key), &parsed) {
            if old.type_str() != new.type_str() && !(old.is_array() && new.is_array()) {
                return Err(ConfigError::Env {
                    var,
                    reason: format!("expected a {}, got `{raw}`", old.type_str()),
                });
            }
        }
        table.insert(key.to_string(), parsed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn embedded_defaults_load() {
        let c = Config::defaults();
        assert_eq!(c.server.listen, "127.0.0.1:7420");
        assert_eq!(c.trajectory.window_minutes, 60);
        assert!(c.auth.tokens.is_empty());
    }

    #[test]
    fn the_organisations_cloud_accounts_are_cloudtrails_own_accounts() {
        let c = Config::load_with_env(
            None,
            env(&[
                (
                    "PLUMBLINE_ORG_CLOUD_ACCOUNTS",
                    r#"["777788889999", "111122223333"]"#,
                ),
                ("PLUMBLINE_CLOUDTRAIL_ORG_ACCOUNTS", r#"["111122223333"]"#),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.cloudtrail.org_accounts,
            vec!["111122223333".to_string(), "777788889999".to_string()]
        );
    }

    #[test]
    fn env_overrides_map_to_section_and_key() {
        let c = Config::load_with_env(
            None,
            env(&[
                ("PLUMBLINE_STORE_RETENTION_DAYS", "7"),
                ("PLUMBLINE_SERVER_LISTEN", "0.0.0.0:9000"),
                ("PLUMBLINE_STORE_FSYNC", "true"),
                (
                    "PLUMBLINE_AUTH_TOKENS",
                    r#"[{name="ci", token="0123456789abcdef", scopes=["ingest"]}]"#,
                ),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.store.retention_days, 7);
        assert_eq!(c.server.listen, "0.0.0.0:9000");
        assert!(c.store.fsync);
        assert_eq!(c.auth.tokens[0].scopes, vec![Scope::Ingest]);
        let err = Config::load_with_env(None, env(&[("PLUMBLINE_STORE_RETENTION_DAYS", "soon")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("PLUMBLINE_STORE_RETENTION_DAYS"),
            "{err}"
        );
    }

    #[test]
    fn file_overrides_defaults_and_unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[trajectory]\nmax_events = 5\n").unwrap();
        assert_eq!(
            Config::load_with_env(Some(&p), vec![])
                .unwrap()
                .trajectory
                .max_events,
            5
        );
        std::fs::write(&p, "[trajectory]\nmax_evnets = 5\n").unwrap();
        let err = Config::load_with_env(Some(&p), vec![]).unwrap_err();
        assert!(err.to_string().contains("max_evnets"), "{err}");
    }

    /// The README's configuration table stays true to the embedded defaults.
    #[test]
    fn the_readme_documents_every_config_key() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let defaults: toml::Table = toml::from_str(&default_toml()).unwrap();
        for (section, keys) in &defaults {
            for key in keys.as_table().expect("sections are tables").keys() {
                let var = format!(
                    "PLUMBLINE_{}_{}",
                    section.to_uppercase(),
                    key.to_uppercase()
                );
                assert!(
                    readme.contains(&format!("`{section}.{key}`")) && readme.contains(&var),
                    "README.md does not document `{section}.{key}` ({var})"
                );
            }
        }
    }

    #[test]
    fn source_apis_are_checked_and_their_keys_come_from_the_environment() {
        let c = Config::load_with_env(
            None,
            env(&[
                ("PLUMBLINE_N8N_API_URL", "https://n8n.example.com"),
                ("PLUMBLINE_N8N_API_KEY", "n8n-api-key"),
                ("PLUMBLINE_MAKE_API_URL", "https://eu1.make.com"),
                ("PLUMBLINE_MAKE_API_TOKEN", "make-api-token"),
            ]),
        )
        .unwrap();
        assert_eq!(c.n8n.api_key, "n8n-api-key");
        assert_eq!(c.make.api_token, "make-api-token");
        assert_eq!(c.n8n.api_timeout_ms, 3000);
        let err = Config::load_with_env(
            None,
            env(&[("PLUMBLINE_N8N_API_URL", "https://n8n.example.com")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("n8n.api_key must be set"), "{err}");
        let err = Config::load_with_env(
            None,
            env(&[
                ("PLUMBLINE_MAKE_API_URL", "eu1.make.com"),
                ("PLUMBLINE_MAKE_API_TOKEN", "t"),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("make.api_url must start"), "{err}");
    }

    #[test]
    fn llm_settings_come_from_the_environment_and_are_checked() {
        let env = |pairs: &[(&str, &str)]| {
            Config::load_with_env(
                None,
                pairs
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        let c = env(&[
            ("PLUMBLINE_LLM_BASE_URL", "http://127.0.0.1:11434/v1/"),
            ("PLUMBLINE_LLM_MODEL", "llama3.1:8b"),
            ("PLUMBLINE_LLM_MAX_RAISED_SEVERITY", "3"),
        ])
        .unwrap();
        assert_eq!(c.llm.model, "llama3.1:8b");
        assert_eq!(
            c.llm.completions_url(),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
        assert_eq!(c.llm.max_raised_severity, 3);
        assert!(!Config::defaults().llm.enabled());
        let err = env(&[("PLUMBLINE_LLM_BASE_URL", "http://x/v1")]).unwrap_err();
        assert!(err.to_string().contains("llm.model must be set"), "{err}");
        let err = env(&[
            ("PLUMBLINE_LLM_BASE_URL", "localhost:8000"),
            ("PLUMBLINE_LLM_MODEL", "m"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("llm.base_url"), "{err}");
        let err = env(&[("PLUMBLINE_LLM_MAX_RAISED_SEVERITY", "0")]).unwrap_err();
        assert!(err.to_string().contains("max_raised_severity"), "{err}");
    }

    #[test]
    fn source_secrets_come_from_the_documented_environment_variables() {
        let env: Vec<(String, String)> = [
            ("PLUMBLINE_GITHUB_SECRET", "gh"),
            ("PLUMBLINE_GITHUB_AUDIT_TOKEN", "gha"),
            ("PLUMBLINE_GITLAB_TOKEN", "gl"),
            ("PLUMBLINE_N8N_TOKEN", "n8"),
            ("PLUMBLINE_MAKE_TOKEN", "mk"),
            ("PLUMBLINE_OKTA_AUTHORIZATION", "ok"),
            ("PLUMBLINE_OPENAI_TOKEN", "oa"),
            ("PLUMBLINE_VAULT_SOCKET_LISTEN", "127.0.0.1:9090"),
            (
                "PLUMBLINE_CLOUDTRAIL_ACCOUNT_ENVIRONMENTS",
                r#"{ "111122223333" = "prod" }"#,
            ),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let c = Config::load_with_env(None, env).unwrap();
        assert_eq!(c.github.secret, "gh");
        assert_eq!(c.github_audit.token, "gha");
        assert_eq!(c.gitlab.token, "gl");
        assert_eq!(c.n8n.token, "n8");
        assert_eq!(c.make.token, "mk");
        assert_eq!(c.okta.authorization, "ok");
        assert!(c.okta.verification);
        assert_eq!(c.openai.token, "oa");
        assert_eq!(c.vault.socket_listen, "127.0.0.1:9090");
        assert_eq!(c.cloudtrail.account_environments["111122223333"], "prod");
        let d = Config::defaults();
        assert!(d.github.secret.is_empty() && d.vault.socket_listen.is_empty());
    }
}

//! `plumbline pack new|build|from-sigma|test|sign|verify|install|list|remove|promote|pull`,
//! `plumbline keygen` and `plumbline replay` (docs/packs.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::Remote;
use crate::config::Config;
use plumbline_runtime::pack::archive::PackFiles;
use plumbline_runtime::pack::load::{self, Provenance};
use plumbline_runtime::pack::{author, PackKey, Trust, TrustedKey};
use plumbline_runtime::Runtime;

#[derive(Debug, Args)]
pub struct PackArgs {
    #[command(subcommand)]
    pub command: PackCommand,
}

#[derive(Debug, Subcommand)]
pub enum PackCommand {
    /// Create a pack directory: pack.toml, components/, fixtures/.
    New {
        name: String,
        /// The first detector's name (what its info() declares).
        #[arg(long, default_value = "my.detector")]
        detector: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Pin every file's sha256 in pack.toml and write the archive (unsigned).
    Build {
        dir: PathBuf,
        /// Archive to write (default: NAME-VERSION.plpack).
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Build a pack (unsigned) from Sigma rule files: the Sigma engine component with the
    /// rules as its config. Names each rule it could not take, and why, one line each.
    FromSigma {
        /// Sigma rule files (YAML, one or several rules each) or folders of them (`*.yml`,
        /// `*.yaml`, searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The pack's name (lowercase letters, digits, `-`); its detector is `NAME.sigma`.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "0.1.0")]
        version: String,
        /// Archive to write (default: NAME.plpack).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// The Sigma engine component (default: sigma_engine.wasm as
        /// scripts/build-detectors.sh builds it beside this binary's target directory).
        #[arg(long, env = "PLUMBLINE_SIGMA_ENGINE")]
        engine: Option<PathBuf>,
    },
    /// Compile the pack's components and run its fixtures in the real runtime.
    Test {
        /// A pack directory or .plpack archive.
        pack: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Sign an archive's manifest with a team key (from `plumbline keygen`).
    Sign {
        archive: PathBuf,
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signed archive (default: in place).
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Check an archive's signature against a trust store and every file against its hash.
    Verify {
        archive: PathBuf,
        /// Configuration whose [packs] trusted_keys is the trust store.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also trust this public key (hex, or a .pub file).
        #[arg(long = "trust")]
        trust: Vec<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Upload an archive to a running server (admin token).
    Install {
        archive: PathBuf,
        /// Run it as shadow: findings recorded, no alerts (default: the manifest's flag).
        #[arg(long, conflicts_with = "active")]
        shadow: bool,
        /// Run it active: its findings raise alerts (default: the manifest's flag).
        #[arg(long)]
        active: bool,
        /// Accept an older version, or a pack name another key signed before.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// List a server's packs, their states and counters.
    List {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        json: bool,
    },
    /// Take a pack out of a server's active set.
    Remove {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Shadow → active.
    Promote {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Download a pack archive from a server (to install on another).
    Pull {
        name: String,
        version: String,
        #[arg(short, long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Writes PREFIX.key (secret, mode 600) and PREFIX.pub.
    #[arg(long, default_value = "plumbline-pack")]
    pub out: PathBuf,
    /// The team the key belongs to (the trust store entry's name).
    #[arg(long, default_value = "my-team")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A running pack's name, or a .plpack archive (verified, not installed).
    #[arg(long)]
    pub pack: String,
    /// How far back: a duration (24h, 7d) or an RFC 3339 time.
    #[arg(long)]
    pub since: String,
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub remote: Remote,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .expect("http client")
}

fn auth(req: reqwest::RequestBuilder, r: &Remote) -> reqwest::RequestBuilder {
    match &r.token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

async fn answer(resp: reqwest::Response) -> anyhow::Result<Value> {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = body["error"]
            .as_str()
            .or_else(|| body["message"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| body.to_string());
        bail!("{status}: {msg}");
    }
    Ok(body)
}

fn read_pack(path: &Path) -> anyhow::Result<PackFiles> {
    if path.is_dir() {
        Ok(PackFiles::from_dir(path)?)
    } else {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(PackFiles::from_archive(&bytes)?)
    }
}

pub async fn run(args: PackArgs) -> anyhow::Result<()> {
    match args.command {
        PackCommand::New {
            name,
            detector,
            dir,
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            if dir.exists() {
                bail!("{} already exists", dir.display());
            }
            author::skeleton(&name, &detector)?.write_dir(&dir)?;
            std::fs::create_dir_all(dir.join("components"))?;
            println!(
                "created {}: put {detector}'s component at components/{detector}.wasm and its fixtures under fixtures/{detector}/, then `plumbline pack build {}`",
                dir.display(),
                dir.display()
            );
        }
        PackCommand::Build { dir, out } => {
            let found = PackFiles::from_dir(&dir)?;
            let (m, files) = author::build(found.clone())?;
            for path in author::left_out(&found, &files) {
                println!(
                    "left out {path}: pack.toml does not name it (add it to [files] to ship it)"
                );
            }
            std::fs::write(
                dir.join("pack.toml"),
                files.get("pack.toml").expect("built"),
            )?;
            let out =
                out.unwrap_or_else(|| PathBuf::from(format!("{}-{}.plpack", m.name, m.version)));
            std::fs::write(&out, files.to_archive())?;
            println!(
                "built {} ({}, {} detectors, {} files pinned); sign it with `plumbline pack sign {} --key KEY`",
                out.display(),
                m.id(),
                m.detectors.len(),
                m.files.len(),
                out.display()
            );
        }
        PackCommand::FromSigma {
            paths,
            name,
            version,
            out,
            engine,
        } => {
            let engine = match engine {
                Some(p) => p,
                None => default_sigma_engine()?,
            };
            let component = std::fs::read(&engine)
                .with_context(|| format!("reading the Sigma engine {}", engine.display()))?;
            let pack = from_sigma(&paths, &name, &version, &component)?;
            for (rule, why) in &pack.skipped {
                println!("skipped {rule}: {why}");
            }
            if pack.taken == 0 {
                bail!("no rule taken: nothing to pack");
            }
            let (m, files) = author::build(pack.files)?;
            let out = out.unwrap_or_else(|| PathBuf::from(format!("{}.plpack", m.name)));
            std::fs::write(&out, files.to_archive())?;
            println!(
                "built {} ({}, detector {}): {} rule(s) taken, {} skipped; test it with `plumbline pack test {}`, sign it with `plumbline pack sign {} --key KEY`",
                out.display(),
                m.id(),
                m.detectors[0].name,
                pack.taken,
                pack.skipped.len(),
                out.display(),
                out.display()
            );
        }
        PackCommand::Test { pack, config } => {
            let files = read_pack(&pack)?;
            let ok = tokio::task::spawn_blocking(move || test(files, config.as_deref())).await??;
            if !ok {
                std::process::exit(1);
            }
        }
        PackCommand::Sign { archive, key, out } => {
            let key = PackKey::load(&key)?;
            let files = author::sign(read_pack(&archive)?, &key)?;
            let out = out.unwrap_or(archive);
            std::fs::write(&out, files.to_archive())?;
            println!("signed {} with key {}", out.display(), key.public_hex());
        }
        PackCommand::Verify {
            archive,
            config,
            trust,
            json,
        } => {
            let mut c = Config::load(config.as_deref())?.packs;
            c.allow_unsigned = false;
            for t in &trust {
                // A .pub file is named after its file; a bare key after itself.
                let (name, key) = match std::fs::read_to_string(t) {
                    Ok(text) => (
                        Path::new(t)
                            .file_stem()
                            .map_or(t.clone(), |s| s.to_string_lossy().into_owned()),
                        text.trim().to_string(),
                    ),
                    Err(_) => (format!("{}…", &t[..t.len().min(12)]), t.clone()),
                };
                c.trusted_keys.push(TrustedKey { name, key });
            }
            let verified = load::verify(&read_pack(&archive)?, Provenance::External, &c);
            if json {
                let out = match &verified {
                    Ok((m, trust)) => serde_json::json!({
                        "verified": true, "name": m.name, "version": m.version,
                        "trust": trust, "detectors": m.detectors.iter().map(|d| &d.name).collect::<Vec<_>>(),
                        "files_pinned": m.files.len() + m.detectors.len(),
                    }),
                    Err(e) => serde_json::json!({"verified": false, "error": e.to_string()}),
                };
                println!("{}", serde_json::to_string_pretty(&out)?);
                if verified.is_err() {
                    std::process::exit(1);
                }
                return Ok(());
            }
            let (m, trust) = verified?;
            let signer = match &trust {
                Trust::Signed { key_name, key } => {
                    format!("signed by `{key_name}` ({}…)", &key[..key.len().min(12)])
                }
                Trust::Builtin => "built into this release".to_string(),
                Trust::Unverified { why } => format!("NOT verified: {why}"),
            };
            println!("{}: verified", m.id());
            println!("  {signer}");
            println!(
                "  {} detector(s): {}",
                m.detectors.len(),
                m.detectors
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            println!(
                "  {} file(s) pinned by sha256, every one matching",
                m.files.len() + m.detectors.len()
            );
        }
        PackCommand::Install {
            archive,
            shadow,
            active,
            force,
            remote,
        } => {
            let bytes = std::fs::read(&archive)?;
            let url = format!("{}/v1/packs", remote.url);
            let mut query: Vec<(&str, &str)> = Vec::new();
            if shadow || active {
                query.push(("shadow", if shadow { "true" } else { "false" }));
            }
            if force {
                query.push(("force", "true"));
            }
            let request = http().post(url).query(&query).body(bytes);
            let body = answer(auth(request, &remote).send().await?).await?;
            let name = body["name"].as_str().unwrap_or("?");
            let version = body["version"].as_str().unwrap_or("?");
            match body["state"].as_str().unwrap_or("?") {
                "shadow" => println!(
                    "{name} {version} installed as shadow: its findings are recorded \
                     (GET /v1/shadow-findings) but raise no alert. When they look right: \
                     plumbline pack promote {name}"
                ),
                "active" => {
                    println!("{name} {version} installed and active: its findings raise alerts now")
                }
                other => println!("{name} {version} installed, state {other}"),
            }
        }
        PackCommand::List { remote, json } => {
            let body = answer(
                auth(http().get(format!("{}/v1/packs", remote.url)), &remote)
                    .send()
                    .await?,
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            for p in body["packs"].as_array().into_iter().flatten() {
                let counters: Vec<String> = p["detectors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| {
                        format!(
                            "{} {}: {} calls, {} findings, {} failures",
                            d["name"].as_str().unwrap_or("?"),
                            d["state"].as_str().unwrap_or(""),
                            d["calls"],
                            d["findings"],
                            d["failures"]
                        )
                    })
                    .collect();
                println!(
                    "{:<20} {:<10} {:<9} {}{}",
                    p["name"].as_str().unwrap_or("?"),
                    p["version"].as_str().unwrap_or("?"),
                    p["state"].as_str().unwrap_or("?"),
                    p["reason"].as_str().unwrap_or(""),
                    if counters.is_empty() {
                        String::new()
                    } else {
                        format!("\n    {}", counters.join("\n    "))
                    }
                );
            }
        }
        PackCommand::Remove { name, remote } => {
            answer(
                auth(
                    http().delete(format!("{}/v1/packs/{name}", remote.url)),
                    &remote,
                )
                .send()
                .await?,
            )
            .await?;
            println!("removed {name}");
        }
        PackCommand::Promote { name, remote } => {
            let b = answer(
                auth(
                    http().post(format!("{}/v1/packs/{name}/promote", remote.url)),
                    &remote,
                )
                .send()
                .await?,
            )
            .await?;
            println!(
                "{name} {} {}",
                b["version"].as_str().unwrap_or("?"),
                b["state"].as_str().unwrap_or("?")
            );
        }
        PackCommand::Pull {
            name,
            version,
            out,
            remote,
        } => {
            let resp = auth(
                http().get(format!("{}/v1/packs/{name}/{version}", remote.url)),
                &remote,
            )
            .send()
            .await?;
            if !resp.status().is_success() {
                answer(resp).await?;
                unreachable!("answer fails on an error status");
            }
            let bytes = resp.bytes().await?;
            let out = out.unwrap_or_else(|| PathBuf::from(format!("{name}-{version}.plpack")));
            std::fs::write(&out, &bytes)?;
            println!("pulled {} ({} bytes)", out.display(), bytes.len());
        }
    }
    Ok(())
}

/// `sigma_engine.wasm` where `scripts/build-detectors.sh rust` puts it for the target
/// directory this binary was built in (`<target>/wasm32-wasip2/release/`).
fn default_sigma_engine() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let found = exe
        .ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join("wasm32-wasip2/release/sigma_engine.wasm"))
        .find(|p| p.is_file());
    found.ok_or_else(|| {
        anyhow::anyhow!(
            "no Sigma engine component found beside {}: build it with \
             `scripts/build-detectors.sh rust`, or give --engine PATH",
            exe.display()
        )
    })
}

/// What `pack from-sigma` made: the pack's files (not yet pinned), how many rules it
/// took, and each rule it did not take with the reason.
pub struct SigmaPack {
    pub files: PackFiles,
    pub taken: usize,
    pub skipped: Vec<(String, String)>,
}

/// The rule files under `paths` (a folder: its `*.yml` / `*.yaml`, recursively), sorted.
fn sigma_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let p = entry?.path();
            if p.is_dir() {
                walk(&p, out)?;
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            bail!("{}: no such file or folder", p.display());
        }
    }
    Ok(out)
}

/// Builds the Sigma pack `name`: the engine component named `<name>.sigma`, every rule
/// the engine takes as a file under `rules/` (one a rule; its `rules` config is that
/// folder, `config_files`), and a fixture proving the rules load in the
/// sandbox (a pack is refused without fixtures, and its fixtures run at install).
pub fn from_sigma(
    paths: &[PathBuf],
    name: &str,
    version: &str,
    engine: &[u8],
) -> anyhow::Result<SigmaPack> {
    use plumbline_runtime::pack::manifest::{ManifestDetector, MANIFEST};
    let detector = format!("{name}.sigma");
    let component =
        plumbline_sigma::with_name(engine, &detector).map_err(|e| anyhow::anyhow!(e))?;
    // Each rule taken: where it came from, its text, its file's stem, and which
    // correlation it is (their references are checked once all are read).
    let mut taken: Vec<(String, String, String, Option<usize>)> = Vec::new();
    let mut rules = Vec::new();
    let mut correlations = Vec::new();
    let mut skipped = Vec::new();
    for file in sigma_files(paths)? {
        let shown = file.display().to_string();
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                skipped.push((shown, format!("unreadable: {e}")));
                continue;
            }
        };
        // Its rules' files in the pack: the source file's stem (and a rule's place there).
        let stem: String = file
            .file_stem()
            .map(|x| x.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let docs = plumbline_sigma::rules::documents(&text);
        for (i, doc) in docs.iter().enumerate() {
            let (place, stem) = if docs.len() == 1 {
                (shown.clone(), stem.clone())
            } else {
                (
                    format!("{shown} (document {})", i + 1),
                    format!("{stem}-{}", i + 1),
                )
            };
            match plumbline_sigma::rules::parse_rule(doc, &place) {
                Ok(plumbline_sigma::Parsed::Detection(r)) => {
                    rules.push(*r);
                    taken.push((place, doc.clone(), stem, None));
                }
                Ok(plumbline_sigma::Parsed::Correlation(c)) => {
                    taken.push((place, doc.clone(), stem, Some(correlations.len())));
                    correlations.push(*c);
                }
                Err(e) if e.rule == place => skipped.push((place, e.why.to_string())),
                Err(e) => skipped.push((format!("{place}: `{}`", e.rule), e.why.to_string())),
            }
        }
    }
    // A correlation naming a rule that is not taken is not taken either (the check the
    // engine makes of the whole text).
    for (c, missing) in plumbline_sigma::rules::unresolved(&rules, &correlations) {
        if let Some(at) = taken.iter().position(|t| t.3 == Some(c)) {
            let (place, ..) = taken.remove(at);
            let why = plumbline_sigma::Why::Reference(missing);
            skipped.push((
                format!("{place}: `{}`", correlations[c].label),
                why.to_string(),
            ));
        }
    }
    // One file a rule; two source files of one name keep both.
    let mut rule_files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (_, doc, stem, _) in &taken {
        let mut path = format!("rules/{stem}.yml");
        let mut n = 2;
        while rule_files.contains_key(&path) {
            path = format!("rules/{stem}-{n}.yml");
            n += 1;
        }
        rule_files.insert(path, doc.clone().into_bytes());
    }
    let fixtures = format!("fixtures/{detector}");
    let manifest = plumbline_runtime::pack::Manifest {
        name: name.to_string(),
        version: version.to_string(),
        wit: "0.1.0".into(),
        description: format!(
            "{} Sigma rule(s), run by the Sigma engine",
            rule_files.len()
        ),
        owners: Vec::new(),
        shadow: true,
        detectors: vec![ManifestDetector {
            name: detector.clone(),
            component: "components/sigma-engine.wasm".into(),
            sha256: String::new(),
            fixtures: fixtures.clone(),
            config: Default::default(),
            config_files: [("rules".to_string(), "rules".to_string())].into(),
        }],
        files: Default::default(),
    };
    // Every rule is parsed before any event is looked at, so a rule the sandbox refuses
    // fails this fixture; the event is of a source no logsource maps to.
    let selftest = serde_json::json!({
        "description": "the pack's rules load in the sandbox; an event no rule reads raises nothing",
        "trajectory": {"kind": "actor", "key": "plumbline-selftest", "events": [{
            "id": "selftest-1", "time": "2026-01-01T00:00:00Z", "source": "custom",
            "actor": {"id": "plumbline-selftest", "type": "service"},
            "system": "plumbline-selftest", "action": "selftest.noop"
        }]},
        "expected": []
    });
    let mut files = PackFiles::default();
    files.files.insert(MANIFEST.into(), manifest.to_bytes());
    files
        .files
        .insert("components/sigma-engine.wasm".into(), component);
    let taken = rule_files.len();
    files.files.extend(rule_files);
    files.files.insert(
        format!("{fixtures}/selftest-rules-load.json"),
        serde_json::to_vec_pretty(&selftest)?,
    );
    Ok(SigmaPack {
        files,
        taken,
        skipped,
    })
}

/// Compiles and self-tests a pack without checking who signed it.
fn test(files: PackFiles, config: Option<&Path>) -> anyhow::Result<bool> {
    let config = Config::load(config)?;
    let cache =
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/plumbline/compiled"));
    let runtime = Runtime::new(config.runtime.clone(), cache)?;
    let mut packs = config.packs;
    packs.allow_unsigned = true;
    match load::load(&runtime, &files, Provenance::External, &packs, Some(false)) {
        Ok(l) => {
            println!(
                "{}: {} detectors compiled, {} fixtures passed",
                l.manifest.id(),
                l.detectors.len(),
                l.fixtures_passed
            );
            Ok(true)
        }
        Err(e) => {
            println!("refused: {e}");
            Ok(false)
        }
    }
}

pub fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let key = PackKey::generate()?;
    let secret = args.out.with_extension("key");
    let public = args.out.with_extension("pub");
    if secret.exists() {
        bail!("{} exists: not overwriting a key", secret.display());
    }
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&secret)?;
        writeln!(f, "{}", key.secret_hex())?;
    }
    std::fs::write(&public, format!("{}\n", key.public_hex()))?;
    println!(
        "secret key: {} (keep it out of the repository)\npublic key: {}\nadd to the hosts' configuration:\n[packs]\ntrusted_keys = [{{ name = \"{}\", key = \"{}\" }}]",
        secret.display(),
        public.display(),
        args.name,
        key.public_hex()
    );
    Ok(())
}

pub async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let path = Path::new(&args.pack);
    let mut url = reqwest::Url::parse(&format!("{}/v1/replay", args.remote.url))?;
    url.query_pairs_mut().append_pair("since", &args.since);
    if let Some(u) = &args.until {
        url.query_pairs_mut().append_pair("until", u);
    }
    let req = if path.is_file() {
        http().post(url).body(std::fs::read(path)?)
    } else {
        url.query_pairs_mut().append_pair("pack", &args.pack);
        http().post(url)
    };
    let r = answer(auth(req, &args.remote).send().await?).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "{} {}: {} events, {} trajectory evaluations",
        r["pack"].as_str().unwrap_or("?"),
        r["version"].as_str().unwrap_or("?"),
        r["events"],
        r["evaluations"]
    );
    for d in r["detectors"].as_array().into_iter().flatten() {
        println!(
            "  {:<40} {} findings, {} would alert, by severity {}",
            d["name"].as_str().unwrap_or("?"),
            d["findings"],
            d["would_alert"],
            d["by_severity"]
        );
        for f in d["sample"].as_array().into_iter().flatten().take(5) {
            println!(
                "    [{}] {} ({})",
                f["severity"],
                f["title"].as_str().unwrap_or(""),
                f["trajectory"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

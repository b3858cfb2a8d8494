//! `plumbline detector new NAME --lang rust|python|js`: a detector project that builds
//! outside this repository — the rule, a positive, a decoy and two negative fixtures, a
//! pack directory around them, and a README of the commands that build, test and pack it.
//!
//! Every language writes the same rule (a large export soon after a secret read, judged
//! with the latest read before it), so the fixtures are shared; the templates live in
//! `templates/` beside this file and are compiled into the binary.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};

use plumbline_runtime::pack::author;

/// The contract every template is written against, written into Python and JS projects
/// (their build tools read the WIT; Rust gets it through the SDK).
const WIT: &str = include_str!("../../../../wit/since_v0.1.0/detector.wit");
const README: &str = include_str!("templates/README.md");
const FIXTURES: [(&str, &str); 4] = [
    (
        "positive-export-after-secret-read.json",
        include_str!("templates/fixtures/positive-export-after-secret-read.json"),
    ),
    (
        "positive-decoy-small-export-between.json",
        include_str!("templates/fixtures/positive-decoy-small-export-between.json"),
    ),
    (
        "negative-export-long-after-read.json",
        include_str!("templates/fixtures/negative-export-long-after-read.json"),
    ),
    (
        "negative-small-export.json",
        include_str!("templates/fixtures/negative-small-export.json"),
    ),
];

/// componentize-py and componentize-js versions the checkout's `scripts/setup.sh test` pins;
/// a project made without a checkout names them in its README.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The detector's name, as its info() declares it (a-z, 0-9, `-`, `_`, `.`), e.g.
    /// `acme.secret-then-export`.
    pub name: String,
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// Where to create the project (default: ./NAME with `.` as `-`); must not exist.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Rust: the plumbline-sdk folder to depend on (default: the `sdk/` of the checkout
    /// this binary was built from).
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// The Plumbline checkout this binary was built from, when it is still there: its SDK,
/// lock file and project-local tools make a new project build with what the tests used.
fn checkout() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.join("sdk/Cargo.toml")
        .is_file()
        .then(|| root.canonicalize().ok())
        .flatten()
}

/// `acme.secret-then-export` → `acme-secret-then-export`: the pack's and crate's name.
fn slug(name: &str) -> String {
    name.replace(['.', '_'], "-")
}

pub fn run(args: NewArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    // The name rule is the contract's, checked as the host checks a loaded detector.
    plumbline_contract::check_info(
        &plumbline_contract::Info::new(name, "0.1.0", "").signals(&["x.y"]),
    )
    .map_err(|e| anyhow::anyhow!("detector {e}"))?;
    let slug = slug(name);
    if !plumbline_runtime::pack::manifest::valid_name(&slug) {
        bail!("`{slug}` (the pack name made from `{name}`) must start with a letter or digit");
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&slug));
    if dir.exists() {
        bail!("{} already exists: choose another --dir", dir.display());
    }
    let checkout = checkout();
    let signal = format!(
        "{}.secret_then_export",
        name.split('.').next().unwrap_or(name)
    );
    let wasm = format!("pack/components/{name}.wasm");

    // Each language: its files, the build command, and what else the README must say.
    let mut files: Vec<(String, String)> = Vec::new();
    let (source, build, extra) = match args.lang {
        Lang::Rust => {
            let sdk = match args.sdk.clone().or_else(|| checkout.as_ref().map(|c| c.join("sdk"))) {
                Some(sdk) => sdk,
                None => bail!("no Plumbline checkout next to this binary: pass --sdk PATH (a checkout's sdk/ folder)"),
            };
            if !sdk.join("Cargo.toml").is_file() {
                bail!(
                    "--sdk {}: no Cargo.toml there (expected a checkout's sdk/ folder)",
                    sdk.display()
                );
            }
            let sdk = sdk.canonicalize()?;
            let krate = slug.replace('-', "_");
            files.push((
                "Cargo.toml".into(),
                fill(
                    include_str!("templates/rust/Cargo.toml"),
                    name,
                    &slug,
                    &signal,
                )
                .replace("@SDK@", &sdk.display().to_string()),
            ));
            files.push((
                "src/lib.rs".into(),
                fill(include_str!("templates/rust/lib.rs"), name, &slug, &signal),
            ));
            // The SDK's own lock file: the project builds against the versions Plumbline
            // was tested with (cargo drops the entries it does not need).
            if let Ok(lock) = std::fs::read_to_string(sdk.join("../Cargo.lock")) {
                files.push(("Cargo.lock".into(), lock));
            }
            files.push((
                ".gitignore".into(),
                "/target\n/pack/components\n*.plpack\n".into(),
            ));
            (
                "src/lib.rs",
                format!("cargo build --release --target wasm32-wasip2 && mkdir -p pack/components && cp target/wasm32-wasip2/release/{krate}.wasm {wasm}"),
                "\n`cargo test` runs the same fixtures natively (no WebAssembly), for a fast loop and\na debugger. The SDK's README (`sdk/README.md` of the Plumbline checkout) lists every\nquery and helper.\n".to_string(),
            )
        }
        Lang::Python => {
            files.push((
                "app.py".into(),
                fill(
                    include_str!("templates/python/app.py"),
                    name,
                    &slug,
                    &signal,
                ),
            ));
            files.push(("wit/detector.wit".into(), WIT.into()));
            files.push((
                ".gitignore".into(),
                "__pycache__/\n/pack/components\n*.plpack\n".into(),
            ));
            let tool = tool(
                &checkout,
                ".tools/venv/bin/componentize-py",
                "componentize-py",
            );
            (
                "app.py",
                format!("mkdir -p pack/components && {tool} -d wit -w detector componentize --stub-wasi -p . app -o {wasm}"),
                format!("\nThe build needs componentize-py (`pip install {COMPONENTIZE_PY}`; a Plumbline checkout's\n`scripts/setup.sh test` installs it). `--stub-wasi` leaves the component no way out of the\nsandbox but the detector's own imports (log, config, clock).\n"),
            )
        }
        Lang::Js => {
            files.push((
                "app.js".into(),
                fill(include_str!("templates/js/app.js"), name, &slug, &signal),
            ));
            files.push(("wit/detector.wit".into(), WIT.into()));
            files.push((
                ".gitignore".into(),
                "node_modules/\n/pack/components\n*.plpack\n".into(),
            ));
            let tool = tool(
                &checkout,
                ".tools/node/node_modules/.bin/componentize-js",
                &format!("npx {COMPONENTIZE_JS}"),
            );
            (
                "app.js",
                format!("mkdir -p pack/components && {tool} app.js --wit wit -n detector -d stdio random clocks http fetch-event -o {wasm}"),
                format!("\nThe build needs componentize-js ({COMPONENTIZE_JS} from npm; a Plumbline checkout's\n`scripts/setup.sh test` installs it). `-d …` switches off the WASI features a detector has\nno use for. Events' `time` and `volume` counts are BigInt; attribute values are\n`{{tag, val}}` (`text`, `integer`, `float`, `boolean`, `null`).\n"),
            )
        }
    };
    let lang = match args.lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
    };
    files.push((
        "README.md".into(),
        fill(README, name, &slug, &signal)
            .replace("@LANG@", lang)
            .replace("@SOURCE@", source)
            .replace("@BUILD@", &build)
            .replace("@EXTRA@", &extra),
    ));
    for (file, text) in FIXTURES {
        files.push((
            format!("pack/fixtures/{name}/{file}"),
            fill(text, name, &slug, &signal),
        ));
    }
    let manifest = author::skeleton(&slug, name)?;
    let manifest = manifest
        .get(plumbline_runtime::pack::manifest::MANIFEST)
        .context("the pack skeleton has a manifest")?;
    files.push((
        "pack/pack.toml".into(),
        String::from_utf8(manifest.to_vec())?,
    ));

    for (file, text) in &files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("a file in the project"))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "created {} ({lang} detector {name}); next, from that folder:",
        dir.display()
    );
    println!("  {build}");
    println!("  plumbline detector test {wasm} pack/fixtures/{name}");
    println!("  plumbline pack build pack -o {slug}-0.1.0.plpack");
    Ok(())
}

fn fill(template: &str, name: &str, slug: &str, signal: &str) -> String {
    template
        .replace("@NAME@", name)
        .replace("@CRATE@", slug)
        .replace("@PACK@", slug)
        .replace("@SIGNAL@", signal)
}

/// The checkout's project-local build tool when it is installed, else the public command.
fn tool(checkout: &Option<PathBuf>, local: &str, public: &str) -> String {
    checkout
        .as_ref()
        .map(|c| c.join(local))
        .filter(|p| p.is_file())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| public.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn names_become_pack_and_crate_names() {
        assert_eq!(slug("acme.secret-then_export"), "acme-secret-then-export");
    }

    #[test]
    fn refuses_a_bad_name_and_an_existing_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let args = |name: &str, dir: &Path| NewArgs {
            name: name.into(),
            lang: Lang::Python,
            dir: Some(dir.to_path_buf()),
            sdk: None,
        };
        let err = run(args("Acme/Rule", &tmp.path().join("a"))).unwrap_err();
        assert!(err.to_string().contains("a-z, 0-9"), "{err}");
        let err = run(args("acme.rule", tmp.path())).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
    }

    /// Every language's project: the rule file, the WIT where the tool needs it, the four
    /// fixtures with the signal filled in, a pack manifest that parses, and a README whose
    /// build command writes where `detector test` and `pack build` read.
    #[test]
    fn writes_a_complete_project_in_each_language() {
        let tmp = tempfile::tempdir().unwrap();
        let placeholder = regex::Regex::new("@[A-Z]+@").unwrap();
        for (lang, source) in [
            (Lang::Rust, "src/lib.rs"),
            (Lang::Python, "app.py"),
            (Lang::Js, "app.js"),
        ] {
            let dir = tmp.path().join(format!("{lang:?}"));
            run(NewArgs {
                name: "acme.secret-then-export".into(),
                lang,
                dir: Some(dir.clone()),
                sdk: None,
            })
            .unwrap();
            let text = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
            assert!(
                text(source).contains("\"acme.secret-then-export\"")
                    || text(source).contains("'acme.secret-then-export'")
            );
            let fixtures = dir.join("pack/fixtures/acme.secret-then-export");
            assert_eq!(std::fs::read_dir(&fixtures).unwrap().count(), 4);
            let positive = text(
                "pack/fixtures/acme.secret-then-export/positive-export-after-secret-read.json",
            );
            assert!(
                positive.contains("\"acme.secret_then_export\""),
                "{positive}"
            );
            let manifest =
                plumbline_runtime::pack::Manifest::parse(text("pack/pack.toml").as_bytes())
                    .unwrap();
            assert_eq!(manifest.name, "acme-secret-then-export");
            assert_eq!(
                manifest.detectors[0].component,
                "components/acme.secret-then-export.wasm"
            );
            let readme = text("README.md");
            let build = readme
                .lines()
                .find(|l| l.starts_with("mkdir") || l.starts_with("cargo build"))
                .unwrap();
            assert!(
                build.ends_with("pack/components/acme.secret-then-export.wasm"),
                "{readme}"
            );
            // No placeholder is left in any file.
            for f in walk(&dir) {
                let t = std::fs::read_to_string(&f).unwrap();
                assert!(!placeholder.is_match(&t), "{}: {t}", f.display());
            }
            if lang != Lang::Rust {
                assert_eq!(text("wit/detector.wit"), WIT);
            }
        }
    }
}

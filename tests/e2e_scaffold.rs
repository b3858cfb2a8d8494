//! A new user's path, from an empty folder outside the repository: `plumbline detector new`
//! in Rust, Python and JavaScript, then the commands the project's README gives — build,
//! `detector test`, `pack build`, `pack sign`, `pack install --active` on a running server —
//! and an alert from each detector. The README's lines run as written (with `plumbline` on
//! PATH), so a README that stops working fails here.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{client, event_time, Server};

const TOKEN: &str = "scaffold-admin-token";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_plumbline")
}

fn workspace_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Runs one shell line in `dir` with this build's `plumbline` first on PATH; panics with
/// its output when it fails.
fn sh(dir: &Path, line: &str) -> String {
    let bin_dir = Path::new(bin()).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .env("PATH", path)
        .env("PLUMBLINE_LOG", "error")
        // `detector test` compiles into the cache the server reads: once per component.
        .env("PLUMBLINE_RUNTIME_CACHE_DIR", support::shared_cache())
        .env("PLUMBLINE_RUNTIME_DEADLINE_MS", "10000")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "`{line}` in {}:\n{text}",
        dir.display()
    );
    text
}

/// The lines of the README's first and second `sh` blocks that are commands.
fn readme_commands(dir: &Path) -> (Vec<String>, Vec<String>) {
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut blocks: Vec<Vec<String>> = Vec::new();
    let mut inside = false;
    for line in readme.lines() {
        if line.starts_with("```sh") {
            inside = true;
            blocks.push(Vec::new());
        } else if line.starts_with("```") {
            inside = false;
        } else if inside && !line.starts_with('#') && !line.trim().is_empty() {
            let cmd = line.split("  #").next().unwrap().trim().to_string();
            blocks.last_mut().unwrap().push(cmd);
        }
    }
    assert_eq!(blocks.len(), 2, "{readme}");
    (blocks[0].clone(), blocks[1].clone())
}

fn export_story(actor: &str, prefix: &str) -> Value {
    let day = &event_time()[..10];
    let ev = |id: &str, minute: u32, action: &str| {
        json!({
            "id": format!("{prefix}-{id}"),
            "time": format!("{day}T10:{minute:02}:00Z"),
            "source": "custom",
            "actor": {"id": actor, "type": "human"},
            "system": "billing-db",
            "action": action,
            "resource": if action == "secret.read" { "secret/data/billing/db" } else { "table:invoices" },
            "environment": "prod",
        })
    };
    let mut export = ev("export", 20, "data.export");
    export["destination"] = json!("s3://scratch-bucket");
    export["volume"] = json!({"rows": 20000});
    json!([ev("read", 5, "secret.read"), export])
}

#[tokio::test]
async fn detector_new_to_alert_in_rust_python_and_javascript() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    sh(work, "plumbline keygen --out team --name team");
    let public = std::fs::read_to_string(work.join("team.pub")).unwrap();
    let config = work.join("plumbline.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[runtime]
cache_dir = {cache:?}
deadline_ms = 10000

[packs]
builtin = false
trusted_keys = [{{ name = "team", key = "{key}" }}]

[[auth.tokens]]
name = "admin"
token = "{TOKEN}"
scopes = ["ingest", "read", "admin"]
"#,
            cache = support::shared_cache().display().to_string(),
            key = public.trim(),
        ),
    )
    .unwrap();
    let s = Server::start_with(
        &work.join("data"),
        &["--config", config.to_str().unwrap()],
        &[],
    );

    for lang in ["rust", "python", "js"] {
        let name = format!("acme.{lang}-export-rule");
        let dir = work.join(lang);
        sh(
            work,
            &format!("plumbline detector new {name} --lang {lang} --dir {lang}"),
        );
        if lang == "rust" {
            // The workspace's target folder: the SDK's dependencies are already built.
            std::os::unix::fs::symlink(workspace_target(), dir.join("target")).unwrap();
        }
        let (build_test_pack, sign_install) = readme_commands(&dir);
        assert_eq!(build_test_pack.len(), 3, "{build_test_pack:?}");
        let started = Instant::now();
        sh(&dir, &build_test_pack[0]);
        let built = started.elapsed();
        let tested = sh(&dir, &build_test_pack[1]);
        assert!(tested.contains("4 passed, 0 failed"), "{tested}");
        assert!(
            tested.contains("pass  positive-decoy-small-export-between.json"),
            "{tested}"
        );
        sh(&dir, &build_test_pack[2]);
        std::fs::copy(work.join("team.key"), dir.join("team.key")).unwrap();
        for line in sign_install.iter().filter(|l| !l.contains("keygen")) {
            let line = line
                .replace('…', TOKEN)
                .replace("http://plumbline:7420", &s.url);
            let out = sh(&dir, &line);
            if line.contains("pack install") {
                assert!(out.contains("active"), "{out}");
            }
        }
        eprintln!("{lang}: built in {:.1} s", built.as_secs_f64());

        let actor = format!("dev-{lang}@acme.com");
        let r = client()
            .post(s.at("/v1/events"))
            .bearer_auth(TOKEN)
            .json(&export_story(&actor, lang))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "{:?}", r.text().await);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let alerts: Value = client()
                .get(s.at("/v1/alerts"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let found = alerts["alerts"].as_array().and_then(|all| {
                all.iter()
                    .find(|a| {
                        a["detectors"]
                            .as_array()
                            .is_some_and(|d| d.iter().any(|d| d["name"] == name.as_str()))
                    })
                    .cloned()
            });
            if let Some(a) = found {
                let ids = a["event_ids"].to_string();
                assert!(
                    ids.contains(&format!("{lang}-read"))
                        && ids.contains(&format!("{lang}-export")),
                    "{a:#}"
                );
                assert_eq!(a["severity"], 2, "{a:#}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no alert from {name}: {alerts:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

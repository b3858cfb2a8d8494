//! Starts the real `plumbline` binary for end-to-end tests and talks to it over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub url: String,
    pub data: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl Server {
    /// Starts `plumbline serve` on a free loopback port with `data` as its data directory.
    pub fn start(data: &Path) -> Server {
        Self::start_with(data, &[], &[])
    }

    pub fn start_with(data: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let (child, url) = spawn(data, &args, &envs);
        Server {
            child,
            url,
            data: data.to_path_buf(),
            args,
            envs,
        }
    }

    /// Stops the server gracefully (SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server without warning (SIGKILL), as a crash would.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same data directory (a new port).
    pub fn restart(&mut self) {
        self.stop();
        let (child, url) = spawn(&self.data, &self.args, &self.envs);
        self.child = child;
        self.url = url;
    }

    /// The server process's id (for a kill from another task at a chosen moment).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

fn spawn(data: &Path, args: &[String], envs: &[(String, String)]) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plumbline"));
    cmd.arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data")
        .arg(data);
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.env("PLUMBLINE_LOG", "warn");
    // Every server loads the built-in packs: share one compiled-component cache between
    // the tests' servers (keyed by content hash, so it is safe), and give detector calls
    // room on a busy 2-core CI machine (the 50 ms default is a production budget; the
    // sandbox tests that need a tight deadline set their own).
    // A test's own config file that names a cache directory keeps it.
    let config_names_cache = args
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| args.get(i + 1))
        .and_then(|f| std::fs::read_to_string(f).ok())
        .is_some_and(|text| text.contains("cache_dir"));
    if !envs.iter().any(|(k, _)| k == "PLUMBLINE_RUNTIME_CACHE_DIR") && !config_names_cache {
        cmd.env("PLUMBLINE_RUNTIME_CACHE_DIR", shared_cache());
    }
    if !envs
        .iter()
        .any(|(k, _)| k == "PLUMBLINE_RUNTIME_DEADLINE_MS")
    {
        cmd.env("PLUMBLINE_RUNTIME_DEADLINE_MS", "1000");
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("start plumbline");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(url) = line.strip_prefix("plumbline listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("plumbline did not report its address within 120 s");
    (child, url)
}

/// One compile cache for every test server of this build.
pub fn shared_cache() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-component-cache");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// 10:00 UTC two days ago, fixed for the test process: events stay inside the default
/// retention (older ones are refused at ingest) whenever the suite runs.
pub fn event_time() -> &'static str {
    static TIME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TIME.get_or_init(|| {
        let day = time::OffsetDateTime::now_utc().date() - time::Duration::days(2);
        format!("{day}T10:00:00Z")
    })
}

/// GET `path`: the status and the JSON body (null if the body is not JSON).
pub async fn get(s: &Server, path: &str) -> (u16, serde_json::Value) {
    let r = client().get(s.at(path)).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Every alert (`GET /v1/alerts`).
pub async fn alerts(s: &Server) -> Vec<serde_json::Value> {
    let (_, v) = get(s, "/v1/alerts").await;
    v["alerts"].as_array().cloned().unwrap_or_default()
}

/// Alerts at needs-review (2) or above whose systems name `system`.
pub async fn loud(s: &Server, system: &str) -> Vec<serde_json::Value> {
    let (_, v) = get(s, "/v1/alerts").await;
    v["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["severity"].as_u64() >= Some(2))
        .filter(|a| a["systems"].to_string().contains(system))
        .cloned()
        .collect()
}

/// POSTs events (one, or an array) to `/v1/events` and expects them accepted (202).
pub async fn post_events(s: &Server, events: &impl serde::Serialize) {
    let r = client()
        .post(s.at("/v1/events"))
        .json(events)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{:?}", r.text().await);
}

/// A valid native event.
pub fn event(id: &str, actor: &str, action: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "time": event_time(),
        "source": "github",
        "actor": {"id": actor, "type": "human", "display": actor},
        "system": "acme/api",
        "action": action,
        "resource": "acme/api@refs/heads/main",
        "environment": "prod",
        "attributes": {"branch": "main"}
    })
}

/// Polls `f` until it returns Some, for up to `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! Pack swap under load: the steady benign mix at a fixed rate with one probe event per
//! request (its own actor and system, so its own trajectory and alert), while the probe
//! pack (detectors/testing/pack-probe) is installed again and again — each install a new
//! version, alternating the component that raises `probe.v1` and the one that raises
//! `probe.v2`, signed with a key the server trusts. The probe raises exactly one finding
//! per event it is given, so after the load has drained every acknowledged probe event
//! must be cited by exactly one finding: none means the swap skipped it, two (a v1 and a
//! v2 finding, or two of one version) means it was evaluated twice into the alert.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use plumbline_runtime::pack::archive::PackFiles;
use plumbline_runtime::pack::{author, PackKey};

use super::load::{self, Sent};
use super::service::{self, Service};

const TICK: Duration = Duration::from_millis(20);
/// The pack's fixtures (the same for both components but for the signal they expect).
const FIXTURES: [[(&str, &str); 2]; 2] = [
    [
        (
            "positive-tick.json",
            include_str!("../../../detectors/testing/pack-probe/fixtures-v1/positive-tick.json"),
        ),
        (
            "negative-system.json",
            include_str!("../../../detectors/testing/pack-probe/fixtures-v1/negative-system.json"),
        ),
    ],
    [
        (
            "positive-tick.json",
            include_str!("../../../detectors/testing/pack-probe/fixtures-v2/positive-tick.json"),
        ),
        (
            "negative-system.json",
            include_str!("../../../detectors/testing/pack-probe/fixtures-v2/negative-system.json"),
        ),
    ],
];

pub struct Swap {
    pub swaps: usize,
    pub swap_p50_ms: f64,
    pub swap_max_ms: f64,
    pub probes: usize,
    pub skipped: usize,
    pub twice: usize,
    pub busy: u64,
}

/// The probe pack at `version`.0.0 (component 1 for odd versions, 2 for even ones), signed
/// (the pack tests install it too).
pub fn probe_pack(version: u32, key: &PackKey) -> anyhow::Result<Vec<u8>> {
    let component = 2 - version % 2;
    let name = format!("examples/pack_probe_v{component}.wasm");
    let path = super::detector::component(&name)
        .with_context(|| format!("{name} not built: run scripts/build-detectors.sh rust"))?;
    let mut files = PackFiles::default();
    files.files.insert(
        "pack.toml".into(),
        format!(
            "name = \"probe\"\nversion = \"{version}.0.0\"\nwit = \"0.1.0\"\nowners = [\"bench\"]\n\n\
             [[detectors]]\nname = \"probe.tick\"\ncomponent = \"components/probe.wasm\"\nfixtures = \"fixtures/probe\"\n"
        )
        .into_bytes(),
    );
    files.files.insert(
        "components/probe.wasm".into(),
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    );
    for (file, text) in FIXTURES[component as usize - 1] {
        files
            .files
            .insert(format!("fixtures/probe/{file}"), text.as_bytes().to_vec());
    }
    let (_, files) = author::build(files)?;
    Ok(author::sign(files, key)?.to_archive())
}

fn probe_event(run: &str, n: u64) -> Value {
    let (time, _) = load::now_rfc3339();
    json!({"id": format!("{run}-probe-{n}"), "time": time, "source": "custom",
           "actor": {"id": format!("{run}-probe-actor-{n}"), "type": "service"},
           "system": format!("{run}/probe-{n}"), "action": "probe.tick"})
}

/// Installs `archive` and returns how long the server took to answer 201 (the new version
/// compiled, self-tested and active).
async fn install(
    client: &reqwest::Client,
    url: &str,
    archive: Vec<u8>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let r = client
        .post(format!("{url}/v1/packs"))
        .body(archive)
        .send()
        .await?;
    let took = started.elapsed();
    if r.status().as_u16() != 201 {
        bail!("pack install answered {}: {}", r.status(), r.text().await?);
    }
    Ok(took)
}

/// Starts its own server (trusting a fresh key), runs `rate` events/s for `seconds` with a
/// probe per request and a new probe version every `every`, then counts the findings per
/// probe event.
pub async fn measure(
    exe: &std::path::Path,
    rate: u64,
    seconds: f64,
    every: Duration,
) -> anyhow::Result<Swap> {
    let key = PackKey::generate()?;
    let trusted = format!("[{{ name = \"bench\", key = \"{}\" }}]", key.public_hex());
    let service = Service::start_with_env(exe, &[("PLUMBLINE_PACKS_TRUSTED_KEYS", &trusted)])?;
    let client = reqwest::Client::new();
    let url = service.url.clone();
    let mut version = 1;
    install(&client, &url, probe_pack(version, &key)?).await?;

    // The next versions are built before the clock starts (building hashes the component).
    let ticks = (seconds / TICK.as_secs_f64()).round().max(1.0) as u64;
    let swaps = (seconds / every.as_secs_f64()).floor().max(1.0) as u32;
    let archives: Vec<Vec<u8>> = (2..=swaps + 1)
        .map(|v| probe_pack(v, &key))
        .collect::<anyhow::Result<_>>()?;
    let swapper = {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let mut times = Vec::new();
            for archive in archives {
                tokio::time::sleep(every).await;
                times.push(install(&client, &url, archive).await?);
            }
            anyhow::Ok(times)
        })
    };
    version += swaps;

    let run = "swap";
    let sent = Arc::new(Sent::default());
    let in_flight = Arc::new(tokio::sync::Semaphore::new(8));
    let per_tick = (rate as f64 * TICK.as_secs_f64()).round().max(1.0) as u64;
    let mut tick = tokio::time::interval(TICK);
    let mut tasks = Vec::new();
    for k in 0..ticks {
        tick.tick().await;
        let mut body = load::ndjson(run, k * per_tick, (k + 1) * per_tick);
        body.push_str(&probe_event(run, k).to_string());
        body.push('\n');
        let permit = in_flight.clone().acquire_owned().await?;
        let (client2, url2, sent2) = (client.clone(), url.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let r = load::post_ndjson(&client2, &url2, body, per_tick + 1, &sent2).await;
            drop(permit);
            r
        }));
    }
    for t in tasks {
        t.await??;
    }
    let mut times = swapper.await??;
    super::drained(&service, &client, Duration::from_secs(300))
        .await?
        .context("the backlog did not drain within 300 s of the pack-swap load")?;

    // Every probe finding, by the event it cites. Probe alerts are severity 2; the benign
    // mix raises few of those, so one page holds them all (checked, not assumed).
    let page = get_json(&client, &format!("{url}/v1/alerts?severity=2&limit=1000")).await?;
    let alerts = page["alerts"].as_array().context("no alerts list")?;
    if alerts.len() >= 1000 {
        bail!("1,000 or more severity-2 alerts: too many to count on one page");
    }
    let mut cited: BTreeMap<String, usize> = BTreeMap::new();
    for f in alerts
        .iter()
        .flat_map(|a| a["findings"].as_array().into_iter().flatten())
    {
        let signal = f["signal"].as_str().unwrap_or("");
        if signal != "probe.v1" && signal != "probe.v2" {
            continue;
        }
        for id in f["evidence"].as_array().into_iter().flatten() {
            *cited
                .entry(id.as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
    }
    let probes = ticks as usize;
    let count = |n: u64| cited.get(&format!("{run}-probe-{n}")).copied().unwrap_or(0);
    let skipped = (0..ticks).filter(|&k| count(k) == 0).count();
    let twice = (0..ticks).filter(|&k| count(k) > 1).count();
    let active = active_probe(&client, &url).await?;
    if active != format!("{version}.0.0") {
        bail!("probe {active} active after the swaps, expected {version}.0.0");
    }
    times.sort();
    Ok(Swap {
        swaps: times.len(),
        swap_p50_ms: service::percentile_ms(&times, 0.5),
        swap_max_ms: service::percentile_ms(&times, 1.0),
        probes,
        skipped,
        twice,
        busy: sent.busy.load(std::sync::atomic::Ordering::Relaxed),
    })
}

async fn active_probe(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    get_json(client, &format!("{url}/v1/packs")).await?["packs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "probe" && p["state"] == "active")
        .and_then(|p| p["version"].as_str())
        .map(str::to_string)
        .context("no active probe pack")
}

async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    Ok(client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

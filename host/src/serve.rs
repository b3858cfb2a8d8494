//! Starting the service: open the store, start each stage, bind, serve until a signal.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;
use plumbline_alert::AlertBook;
use plumbline_api::{self as api, auth::Auth, AppState};
use plumbline_ingest::Ingest;
use plumbline_store::{Store, Writer};
use plumbline_summary::SummaryStage;
use plumbline_trajectory::{Evaluator, TrajectoryStage};

/// Refuses an open API anywhere but loopback.
pub fn check_exposure(config: &Config, addr: &SocketAddr) -> anyhow::Result<()> {
    if config.auth.tokens.is_empty() && !addr.ip().is_loopback() {
        anyhow::bail!(
            "refusing to listen on {addr} without API tokens: configure [[auth.tokens]] \
             (or PLUMBLINE_AUTH_TOKENS), or listen on a loopback address"
        );
    }
    Ok(())
}

/// The running pieces behind the API.
pub struct Service {
    pub state: AppState,
    pub summaries: Arc<SummaryStage>,
    pub review: plumbline_review::Review,
    /// What the service was started with (the routers below the core take their parts).
    pub config: Arc<Config>,
}

/// Opens the store and starts every stage: trajectories (catching up from their checkpoint)
/// before the writer, so no durable batch is missed.
pub fn start(config: Config, evaluator: Arc<dyn Evaluator>) -> anyhow::Result<Service> {
    start_in(config, evaluator, None)
}

/// As [`start`]; on a cluster node, ingest publishes to the cluster's log and the
/// trajectory stage takes only the partitions this node owns ([`join_cluster`]).
pub fn start_in(
    config: Config,
    evaluator: Arc<dyn Evaluator>,
    cluster: Option<&plumbline_cluster::Cluster>,
) -> anyhow::Result<Service> {
    prepare_data_dir(&config.server.data_dir)?;
    let store = Store::open_with_cache(&config.server.data_dir, config.store.cache_mib << 20)?;
    let alerts = AlertBook::open(&store)?;
    let review = plumbline_review::Review::open(&store, &config.review, alerts.clone())?;
    // Policy and routing: summarised alerts are decided and recorded in the outbox.
    let policy = plumbline_policy::model::Policy::load(&config.policy.file)?;
    let routing = Arc::new(plumbline_delivery::Routing::open(
        &store,
        alerts.clone(),
        policy,
        plumbline_delivery::RoutingSettings {
            public_url: config.server.public_url.clone(),
            delivery: config.delivery.settings(),
            http_timeout: std::time::Duration::from_millis(config.delivery.http_timeout_ms.max(1)),
        },
        Arc::new(plumbline_policy::schedule::SystemClock),
        &|k| std::env::var(k).ok(),
    )?);
    // Subscribed before trajectories start, so alerts raised while catching up are summarised.
    let summaries = SummaryStage::start(
        &config.llm,
        config.store.retention_days,
        &store,
        alerts.clone(),
        routing.stage.clone(),
        tokio::runtime::Handle::current(),
    )?;
    let trajectories = if cluster.is_some() {
        TrajectoryStage::start_partitioned(
            store.clone(),
            &config.trajectory,
            evaluator.clone(),
            Arc::new(alerts.clone()),
        )?
    } else {
        TrajectoryStage::start(
            store.clone(),
            &config.trajectory,
            evaluator.clone(),
            Arc::new(alerts.clone()),
        )?
    };
    summaries.resume(|id| {
        trajectories
            .get(id)
            .ok()
            .flatten()
            .or_else(|| review.trajectory(id))
    });
    // Arrivals are counted per source (coverage) on their way to the trajectories.
    // On a cluster, the partitions' owners feed the trajectories from the log; this
    // store keeps what the node owns, for reads.
    let next: Arc<dyn plumbline_store::CommitListener> = match cluster {
        None => trajectories.listener(),
        Some(_) => Arc::new(|_: plumbline_store::CommittedBatch| {}),
    };
    let writer = Writer::start(store.clone(), config.store.fsync, review.listener(next))?;
    review.start();
    // Deliveries wait on the writer's barrier, so each is durable before its first attempt.
    // A cluster node starts its dispatcher once it knows the cluster's outbox.
    if cluster.is_none() {
        routing.start(Arc::new(writer.clone()));
    }
    let audit = plumbline_store::audit::AuditLog::open(&store, writer.clone())?;
    audit_policy_load(&audit, &config.policy.file);
    // Detectors' questions to the model: asked off the evaluation threads; an answer
    // re-evaluates its trajectory (the detector then finds it cached).
    let judge = if config.llm.enabled() && config.llm.judge_calls_per_hour > 0 {
        let client =
            plumbline_summary::client::ChatClient::new(&config.llm, &|k| std::env::var(k).ok())?;
        let stage = Arc::downgrade(&trajectories);
        Some(plumbline_summary::judge::LlmJudge::new(
            config.llm.clone(),
            Arc::new(client),
            plumbline_summary::judge::JudgeAudit::open(&store)?,
            tokio::runtime::Handle::current(),
            Arc::new(move |id: &str| {
                if let Some(s) = stage.upgrade() {
                    s.reevaluate(id);
                }
            }),
        ))
    } else {
        None
    };
    let stage = trajectories.clone();
    // Agents' pending calls are judged by the same detectors as everything else.
    let verdicts = Arc::new(plumbline_verdict::Gate::new(
        trajectories.clone(),
        evaluator.clone(),
        writer.clone(),
        config.verdict.clone(),
    ));
    let lagging = stage.clone();
    let mut ingest = Ingest::new(writer, config.store.retention_days)
        .with_config(&config.ingest)
        .with_backlog(Arc::new(move || stage.backlog()))
        .with_lag(Arc::new(move || lagging.lag()));
    if let Some(c) = cluster {
        ingest = ingest.with_log(Arc::new(plumbline_cluster::Publisher::new(c.clone())));
    }
    let state = AppState {
        body_limit: config.server.body_limit_bytes,
        store,
        ingest,
        auth: Auth::new(&config.auth.tokens),
        adapters: plumbline_ingest::adapters(&config.sources()).into(),
        enrich: plumbline_enrich::Enrichment::new(&config.sources()),
        trajectories,
        verdicts: Some(verdicts),
        judge,
        alerts,
        routing,
        audit,
    };
    crate::retention::Kept {
        store: state.store.clone(),
        trajectories: state.trajectories.clone(),
        alerts: state.alerts.clone(),
        labels: review.labels.clone(),
        routing: state.routing.clone(),
    }
    .spawn(config.store.clone());
    plumbline_api::vault_socket::listen(&state, &config.vault)?;
    Ok(Service {
        state,
        summaries,
        review,
        config: Arc::new(config),
    })
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let addr: SocketAddr = tokio::net::lookup_host(&config.server.listen)
        .await
        .with_context(|| format!("server.listen `{}` is not an address", config.server.listen))?
        .next()
        .with_context(|| {
            format!(
                "server.listen `{}` resolves to nothing",
                config.server.listen
            )
        })?;
    check_exposure(&config, &addr)?;
    // Before anything parses an event (pack fixtures included): markers must use this
    // installation's key, not a per-process one.
    prepare_data_dir(&config.server.data_dir)?;
    // Compiling detectors blocks (and their WASI glue must not run on an async worker).
    let (runtime_config, data_dir) = (config.runtime.clone(), config.server.data_dir.clone());
    let runtime = tokio::task::spawn_blocking(move || {
        plumbline_runtime::Runtime::load(&runtime_config, &data_dir)
    })
    .await??;
    // Packs: built-in (embedded in this binary), installed, then the watched directory;
    // all before the service starts, so the first events meet the full set.
    let packs_config = config.packs.clone();
    let data_dir = config.server.data_dir.clone();
    let rt = runtime.clone();
    let packs = tokio::task::spawn_blocking(move || {
        plumbline_runtime::pack::Packs::start(rt, packs_config, &data_dir)
    })
    .await??;
    let watch_dir = config.packs.watch_dir_in(&config.server.data_dir);
    let watching = config.packs.watch;
    let p = packs.clone();
    // Kept alive until the server stops.
    let _pack_watch = tokio::task::spawn_blocking(move || {
        if watching {
            plumbline_runtime::pack::watch::start(p, watch_dir).map(Some)
        } else {
            // Read once, not watched.
            std::fs::create_dir_all(&watch_dir).ok();
            plumbline_runtime::pack::watch::scan(&p, &watch_dir, &mut Default::default());
            Ok(None)
        }
    })
    .await??;
    tracing::info!(
        detectors = runtime.detectors().detectors().len(),
        "detector runtime ready"
    );
    let evaluator: Arc<dyn Evaluator> = runtime.clone();
    let summaries_budget_ms = config.llm.budget_ms.min(10_000);
    let cluster = if config.cluster.enabled {
        let node = config.node_name();
        let c = plumbline_cluster::Cluster::connect(&config.cluster, &node).await?;
        tracing::info!(node, url = %config.cluster.url, "joined the cluster's JetStream");
        Some(c)
    } else {
        None
    };
    let service = start_in(config, evaluator, cluster.as_ref())?;
    let joined = match cluster {
        Some(c) => {
            // Packs installed on any node are installed on every node.
            plumbline_cluster::packs::share(&c, packs.clone()).await?;
            Some(join_cluster(c, &service).await?)
        }
        None => None,
    };
    let membership = joined.as_ref().map(|(m, _)| m.clone());
    if let Some(judge) = &service.state.judge {
        runtime.set_judge(Arc::new(judge.clone()));
    }
    if service.state.auth.is_open() {
        tracing::warn!("no API tokens configured: the API is open to anyone who can reach {addr} (loopback only)");
    }
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(%local, "plumbline ready");
    // Tests and scripts read this line to find a port chosen by the OS.
    println!("plumbline listening on http://{local}");
    let trajectories = service.state.trajectories.clone();
    let summaries = service.summaries.clone();
    let review = plumbline_api::review::routes(plumbline_api::review::ReviewState {
        app: service.state.clone(),
        review: service.review.clone(),
        runtime: Some(runtime.clone()),
        summaries: Some(service.summaries.clone()),
        secure_cookie: service.config.server.public_url.starts_with("https://"),
        signins: Default::default(),
    });
    let mut detectors = api::detectors::routes(runtime, &service.state);
    if let Some(m) = &membership {
        detectors = detectors.merge(api::cluster::routes(m.clone(), service.state.auth.clone()));
    }
    let detectors = detectors.merge(api::packs::routes(
        packs,
        service.state.clone(),
        service.config.trajectory.clone(),
    ));
    let auth = service.state.auth.clone();
    let limiter = api::limits::RateLimiter::new(&service.config.limits);
    let public_url = service.config.server.public_url.clone();
    let listener = api::limits::Listener::new(listener, &service.config.limits);
    let app = api::router(service.state)
        .merge(detectors)
        .merge(review)
        .layer(axum::middleware::from_fn_with_state(
            api::guard::Guard::new(auth.clone(), &public_url),
            api::guard::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            (auth, limiter),
            api::limits::rate_limit,
        ))
        .layer(axum::middleware::from_fn(api::limits::busy));
    let app = app.into_make_service_with_connect_info::<api::limits::Conn>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // Let summaries in flight finish; what does not is resumed at the next start.
    let budget = std::time::Duration::from_millis(summaries_budget_ms);
    if !summaries.drain(budget).await {
        tracing::warn!("summaries still in flight at shutdown; they resume at the next start");
    }
    // The outbox's consumer and the partitions go to the other nodes now: a send under
    // way and each partition's step under way finish first.
    if let Some((m, outbox)) = joined {
        outbox.step_down().await;
        m.leave().await;
    }
    // Save open windows so the next start resumes without re-reading history.
    tokio::task::spawn_blocking(move || trajectories.shutdown()).await?;
    Ok(())
}

/// Joins the cluster: this node's alerts go to the alert stream, every node's come back
/// into its alert book, its deliveries go to the cluster's one outbox consumer, and it
/// takes its share of the partitions (partition 0's owner consumes the outbox).
async fn join_cluster(
    cluster: plumbline_cluster::Cluster,
    service: &Service,
) -> anyhow::Result<(
    Arc<plumbline_cluster::Membership>,
    Arc<plumbline_cluster::outbox::ClusterOutbox>,
)> {
    let publisher = plumbline_cluster::AlertPublisher::start(cluster.clone());
    let p = publisher.clone();
    service
        .state
        .alerts
        .replicate(Arc::new(move |a: &plumbline_alert::Alert| p.stored(a)));
    let mirror =
        plumbline_cluster::Mirror::start(cluster.clone(), service.state.alerts.clone()).await?;
    // Labels and response-action decisions recorded on any node are kept on every node.
    let labels = service.review.labels.clone();
    let actions = service.state.routing.responder.clone();
    // So are the stories notified (dedup): one story notifies once, whichever node decides.
    let stories = service.state.routing.stage.clone();
    let decisions = stories.clone();
    let tables: std::collections::HashMap<&'static str, plumbline_cluster::records::Importer> = [
        (
            "labels",
            Arc::new(move |k: &[u8], v: &[u8], from: &str| labels.import(k, v, from))
                as plumbline_cluster::records::Importer,
        ),
        (
            "actions",
            Arc::new(move |_: &[u8], v: &[u8], _: &str| actions.import(v)),
        ),
        (
            "stories",
            Arc::new(move |k: &[u8], v: &[u8], _: &str| stories.import_story(k, v)),
        ),
        (
            "decisions",
            Arc::new(move |k: &[u8], v: &[u8], _: &str| decisions.import_decisions(k, v)),
        ),
    ]
    .into_iter()
    .collect();
    let records = plumbline_cluster::records::Records::start(cluster.clone(), tables).await?;
    service.review.labels.replicate(records.replica("labels"));
    service
        .state
        .routing
        .responder
        .replicate(records.replica("actions"));
    service
        .state
        .routing
        .stage
        .replicate(records.replica("stories"), records.replica("decisions"));
    let routing = &service.state.routing;
    let actions = routing.responder.clone();
    let outbox = plumbline_cluster::outbox::ClusterOutbox::start(
        cluster.clone(),
        routing.outbox.clone(),
        routing.dispatcher().clone(),
        Arc::new(move |v: &[u8]| actions.import(v)),
    )
    .await?;
    routing.start_relayed(
        Arc::new(service.state.ingest.writer().clone()),
        outbox.clone(),
    );
    let policy = routing.stage.clone();
    let owner = plumbline_cluster::Owner::new(
        cluster.clone(),
        service.state.trajectories.clone(),
        service.state.ingest.writer().clone(),
        publisher,
        mirror,
        service.state.alerts.clone(),
        Arc::new(move |a: &plumbline_alert::Alert| policy.undecided(a).ok().flatten()),
        service.config.trajectory.eval_workers,
    );
    let membership = plumbline_cluster::Membership::start(cluster, owner);
    outbox.follow(membership.leading());
    Ok((membership, outbox))
}

/// The policy in force is an admin decision too: each start records which file (and its
/// sha256) it loaded.
fn audit_policy_load(audit: &plumbline_store::audit::AuditLog, file: &std::path::Path) {
    use sha2::Digest;
    let (target, sha256) = if file.as_os_str().is_empty() {
        ("(embedded default policy)".to_string(), String::new())
    } else {
        let bytes = std::fs::read(file).unwrap_or_default();
        (
            file.display().to_string(),
            hex::encode(sha2::Sha256::digest(bytes)),
        )
    };
    let audit = audit.clone();
    tokio::spawn(async move {
        let record = plumbline_store::audit::AuditRecord {
            who: "plumbline",
            action: "policy.load",
            target: &target,
            outcome: Ok(()),
            detail: serde_json::json!({ "sha256": sha256 }),
        };
        if let Err(e) = audit.append(record).await {
            tracing::error!(error = %e, "audit log: the policy load could not be recorded");
        }
    });
}

/// Creates the data directory and takes up its redaction key.
fn prepare_data_dir(data_dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    use_redaction_key(data_dir)
}

/// The installation's redaction key (`<data_dir>/redaction.key`, created at first start,
/// readable by the owner only): secrets are replaced by an HMAC under it, so a reader of
/// the API cannot test guesses offline, and markers stay stable across restarts.
fn use_redaction_key(data_dir: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    let path = data_dir.join("redaction.key");
    let key: [u8; 32] = match std::fs::read_to_string(&path) {
        Ok(text) => hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .with_context(|| format!("{} is not 64 hex digits", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::getrandom(&mut key)
                .map_err(|e| anyhow::anyhow!("no randomness for the redaction key: {e}"))?;
            let mut f = std::fs::OpenOptions::new();
            f.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
            let mut file = f
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            writeln!(file, "{}", hex::encode(key))?;
            file.sync_all()?;
            key
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if !plumbline_event::redact::set_key(key) {
        // Only when one process serves two data directories (tests do).
        tracing::warn!(path = %path.display(), "a different redaction key is already in use in this process");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

//! The pack set on a cluster: what an admin installs, removes, promotes or demotes on one
//! node is recorded in JetStream — the archive in an object store (by sha256), the set in
//! a key-value bucket (pack name → version, digest, shadow) — and every node watches the
//! bucket and applies it to its own registry. Each node verifies the archive's signature
//! against its own trusted keys, as for an upload: the cluster carries packs, it does not
//! vouch for them.

use std::sync::Arc;

use async_nats::jetstream::kv::{self, Operation};
use async_nats::jetstream::object_store;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::{js_err, Cluster, ClusterError};
use plumbline_runtime::pack::{Origin, PackChange, Packs};

const SET_BUCKET: &str = "plumbline_packs";
const ARCHIVES_BUCKET: &str = "plumbline_pack_archives";

/// One pack of the cluster's set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    version: String,
    sha256: String,
    shadow: bool,
}

/// Shares this node's pack changes and applies everyone's. Runs until the process ends.
pub async fn share(cluster: &Cluster, packs: Arc<Packs>) -> Result<(), ClusterError> {
    let js = &cluster.js;
    let replicas = cluster.config.replicas.max(1);
    let set = crate::bucket(js, SET_BUCKET, None, replicas).await?;
    let archives = js
        .create_object_store(object_store::Config {
            bucket: ARCHIVES_BUCKET.into(),
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| js_err("pack archives")(e.to_string()))?;

    // Outgoing: a change made here, unless the set already says so (it came from there).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PackChange>();
    packs.on_change(Arc::new(move |c: &PackChange| {
        let _ = tx.send(c.clone());
    }));
    let (out_set, out_archives) = (set.clone(), archives.clone());
    tokio::spawn(async move {
        while let Some(change) = rx.recv().await {
            if let Err(e) = publish(&out_set, &out_archives, change).await {
                tracing::error!(error = %e, "pack change not shared with the cluster");
            }
        }
    });

    // Incoming: the set as it is, then every change.
    let mut watch = set
        .watch_with_history(">")
        .await
        .map_err(|e| js_err("pack set")(e.to_string()))?;
    tokio::spawn(async move {
        while let Some(entry) = watch.next().await {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "pack set watch failed; resuming");
                    continue;
                }
            };
            if let Err(e) = apply(&packs, &archives, entry).await {
                tracing::error!(error = %e, "a pack of the cluster's set could not be applied here");
            }
        }
    });
    Ok(())
}

async fn publish(
    set: &kv::Store,
    archives: &object_store::ObjectStore,
    change: PackChange,
) -> Result<(), ClusterError> {
    let err = |e: String| js_err("pack set")(e);
    match change {
        PackChange::Installed {
            name,
            version,
            shadow,
            archive,
            sha256,
        } => {
            let record = Record {
                version,
                sha256,
                shadow,
            };
            if current(set, &name).await?.as_ref() == Some(&record) {
                return Ok(());
            }
            // The archive first: a node that sees the record finds its archive.
            if archives.info(&record.sha256).await.is_err() {
                archives
                    .put(record.sha256.as_str(), &mut archive.as_slice())
                    .await
                    .map_err(|e| err(e.to_string()))?;
            }
            let value = serde_json::to_vec(&record).expect("records serialise");
            set.put(&name, value.into())
                .await
                .map_err(|e| err(e.to_string()))?;
            tracing::info!(
                pack = name,
                version = record.version,
                "pack shared with the cluster"
            );
        }
        PackChange::Removed { name } => {
            if current(set, &name).await?.is_some() {
                set.delete(&name).await.map_err(|e| err(e.to_string()))?;
                tracing::info!(pack = name, "pack removed from the cluster");
            }
        }
    }
    Ok(())
}

async fn current(set: &kv::Store, name: &str) -> Result<Option<Record>, ClusterError> {
    let value = set
        .get(name)
        .await
        .map_err(|e| js_err("pack set")(e.to_string()))?;
    Ok(value.and_then(|v| serde_json::from_slice(&v).ok()))
}

async fn apply(
    packs: &Arc<Packs>,
    archives: &object_store::ObjectStore,
    entry: kv::Entry,
) -> Result<(), ClusterError> {
    let name = entry.key.clone();
    let here = packs
        .list()
        .into_iter()
        .find(|p| p.name == name && (p.state == "active" || p.state == "shadow"));
    let packs = packs.clone();
    let blocking = |f: Box<dyn FnOnce() -> Result<(), String> + Send>| async move {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|e| js_err(format!("pack {name}"))(e))
    };
    match entry.operation {
        Operation::Delete | Operation::Purge => {
            if here.is_some() {
                let n = entry.key.clone();
                blocking(Box::new(move || {
                    packs.remove(&n).map(|_| ()).map_err(|e| e.to_string())
                }))
                .await?;
            }
        }
        Operation::Put => {
            let Ok(record) = serde_json::from_slice::<Record>(&entry.value) else {
                return Err(js_err(format!("pack {}", entry.key))(
                    "not a pack record".into(),
                ));
            };
            let shadow_now = here.as_ref().map(|p| p.state == "shadow");
            if let Some(p) = &here {
                if p.version == record.version && p.origin != Origin::Builtin {
                    if shadow_now != Some(record.shadow) {
                        let (n, shadow) = (entry.key.clone(), record.shadow);
                        blocking(Box::new(move || {
                            packs
                                .set_shadow(&n, shadow)
                                .map(|_| ())
                                .map_err(|e| e.to_string())
                        }))
                        .await?;
                    }
                    return Ok(());
                }
            }
            let mut object = archives
                .get(&record.sha256)
                .await
                .map_err(|e| js_err(format!("pack archive {}", record.sha256))(e.to_string()))?;
            let mut bytes = Vec::new();
            object
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| js_err(format!("pack archive {}", record.sha256))(e.to_string()))?;
            let shadow = record.shadow;
            blocking(Box::new(move || {
                packs
                    .install_archive(bytes, Some(shadow), Origin::Installed, true)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }))
            .await?;
        }
    }
    Ok(())
}

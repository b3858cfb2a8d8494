//! The TCP listener Vault's `socket` audit device streams to (`[vault] socket_listen`):
//! an entry point like HTTP. It frames JSON lines, batches them and hands them to the
//! Vault adapter's mapping; `plumbline_ingest::vault` only maps.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::ingest::submit;
use super::AppState;
use plumbline_ingest::memory::SledMemory;
use plumbline_ingest::vault::{map_lines, VaultConfig};
use plumbline_ingest::Mapped;

/// Starts the socket listener when `[vault] socket_listen` is set; returns its address.
/// Binds synchronously so a bad address fails start-up instead of a background task.
pub fn listen(state: &AppState, config: &VaultConfig) -> anyhow::Result<Option<SocketAddr>> {
    let addr = config.socket_listen.trim();
    if addr.is_empty() {
        return Ok(None);
    }
    let std_listener = std::net::TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("vault.socket_listen `{addr}`: cannot listen: {e}"))?;
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    if !local.ip().is_loopback() {
        tracing::warn!(%local, "the Vault audit socket takes unauthenticated connections: keep it on a private network");
    }
    // A bad peer entry fails start-up, not the first connection.
    config.validate().map_err(|e| anyhow::anyhow!(e))?;
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    let state = state.clone();
    let config = config.clone();
    // Vault keeps one connection per audit device and node; a bound keeps a stray client
    // from holding unbounded buffers.
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(SOCKET_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            match listener.accept().await {
                Ok((conn, peer)) => {
                    if !config.peer_allowed(peer.ip()).unwrap_or(false) {
                        tracing::warn!(%peer, "vault audit socket: peer not in vault.socket_peers; disconnected");
                        drop(conn);
                        continue;
                    }
                    tracing::info!(%peer, "vault audit socket connected");
                    let state = state.clone();
                    let idle = Duration::from_secs(config.socket_idle_secs.max(1));
                    tokio::spawn(async move {
                        read_stream(state, conn, peer, idle).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "vault audit socket accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    tracing::info!(%local, "vault audit socket listening");
    Ok(Some(local))
}

/// Connections read at once (further ones wait in the accept queue).
const SOCKET_CONNECTIONS: usize = 64;

/// Most entries stored per batch from a socket.
const SOCKET_BATCH: usize = 512;

/// Reads JSON lines from one Vault connection, storing them in batches. When the store is
/// unavailable the reader waits and retries instead of dropping lines: Vault then sees
/// back-pressure on its socket, which is how its audit devices expect a sink to behave.
async fn read_stream(
    state: AppState,
    conn: tokio::net::TcpStream,
    peer: SocketAddr,
    idle: Duration,
) {
    let limit = state.body_limit;
    let mut reader = BufReader::new(conn);
    let mut line = Vec::new();
    let mut batch: Vec<Result<Value, String>> = Vec::new();
    loop {
        let read = if batch.is_empty() {
            match tokio::time::timeout(idle, read_line(&mut reader, &mut line, limit)).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::info!(%peer, ?idle, "vault audit socket idle; closing it");
                    break;
                }
            }
        } else {
            // Flush what we have when Vault pauses. A line half-read when the timer fires
            // stays in `line` and is completed by the next read.
            match tokio::time::timeout(
                Duration::from_millis(50),
                read_line(&mut reader, &mut line, limit),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => {
                    flush(&state, &mut batch, peer).await;
                    continue;
                }
            }
        };
        match read {
            Ok(complete) => {
                let text = line.trim_ascii();
                if !text.is_empty() {
                    batch.push(serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}")));
                }
                line.clear();
                if batch.len() >= SOCKET_BATCH.min(state.ingest.max_events()) {
                    flush(&state, &mut batch, peer).await;
                }
                if !complete {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "vault audit socket read failed");
                break;
            }
        }
    }
    flush(&state, &mut batch, peer).await;
    tracing::info!(%peer, "vault audit socket closed");
}

/// Appends to `buf` up to and including the next newline. `Ok(true)`: a line ended;
/// `Ok(false)`: the connection ended (what is in `buf` is the last, unterminated line).
/// A line longer than `limit` is an error and ends the connection, since the rest of it
/// cannot be framed.
async fn read_line(
    reader: &mut BufReader<tokio::net::TcpStream>,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<bool> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(false);
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let n = chunk.len();
        if buf.len() + n > limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("audit line longer than {limit} bytes"),
            ));
        }
        buf.extend_from_slice(chunk);
        reader.consume(n);
        if done {
            return Ok(true);
        }
    }
}

async fn flush(state: &AppState, batch: &mut Vec<Result<Value, String>>, peer: SocketAddr) {
    if batch.is_empty() {
        return;
    }
    let lines = std::mem::take(batch);
    let mut delay = Duration::from_millis(100);
    loop {
        let mut mapped = Mapped::default();
        map_lines(lines.clone(), &mut mapped);
        // The socket takes no credential: only a Vault on this very host (loopback) counts
        // as the source verified, so a network peer cannot name a token to revoke.
        mapped.stamp(peer.ip().is_loopback());
        let stored = match SledMemory::open(&state.store) {
            Ok(memory) => submit(state, mapped, &memory).await,
            Err(e) => Err(e.into()),
        };
        match stored {
            Ok(report) => {
                for r in &report.rejected {
                    tracing::warn!(%peer, field = %r.field, reason = %r.reason, "vault audit line refused");
                }
                return;
            }
            Err(e) => {
                tracing::error!(%peer, error = ?e.body, "storing vault audit lines failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

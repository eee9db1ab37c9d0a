//! `GET /shell/<lease id>`: the tenant's command in its lease's running container, over a
//! WebSocket ([`gridlease_fetch::shell`] has the protocol; ACC-01, ACC-02).
//!
//! Refused before the upgrade, each with its reason: an access that is not the lease's tenant's
//! for this shell (ACC-01), a lease whose job is built in, runs as a local process or is not
//! running, a node without a container engine, and more than [`MAX_PER_LEASE`] sessions of one
//! lease or [`MAX_SESSIONS`] in all at once. The command is then started in the container the
//! node made for the lease ([`crate::docker::ContainerExecutor::exec`]) and its streams bridged
//! to the socket until it exits, the container stops, the tenant leaves or the node shuts down.

use std::{collections::HashMap, sync::Arc};

use alloy::primitives::B256;
use axum::{
    extract::{
        Path, State,
        ws::{Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use gridlease_daemon::lock;
use gridlease_fetch::{
    access::AccessTo,
    shell::{Control, Ended, MAX_FRAME, PING_EVERY, STDERR, STDOUT, Start, output_frame},
};
use gridlease_primitives::protocol::JobKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};

use crate::{
    api::{
        auth::{check_access, deny},
        results::lease_job,
    },
    docker::{ContainerExecutor, exec::ExecStream},
    shared::Shared,
    state::JobState,
};

/// Sessions of one lease open at once.
pub const MAX_PER_LEASE: usize = 4;
/// Sessions open at once, all leases together.
pub const MAX_SESSIONS: usize = 64;
/// How long the tenant has, once upgraded, to send its [`Start`].
const START_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Open sessions per lease.
#[derive(Debug, Default)]
pub struct Sessions(std::sync::Mutex<HashMap<B256, usize>>);

/// One open session, given back when dropped.
struct Slot {
    s: Arc<Shared>,
    lease: B256,
}

impl Sessions {
    /// A slot for a session of `lease`, if both limits allow one.
    fn take(s: &Arc<Shared>, lease: B256) -> Option<Slot> {
        let mut open = lock(&s.shells.0);
        let all: usize = open.values().sum();
        let n = open.entry(lease).or_default();
        if *n >= MAX_PER_LEASE || all >= MAX_SESSIONS {
            return None;
        }
        *n += 1;
        Some(Slot {
            s: s.clone(),
            lease,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = lock(&self.s.shells.0);
        if let Some(n) = open.get_mut(&self.lease) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.lease);
            }
        }
    }
}

/// `GET /shell/<lease id>`, upgraded to a WebSocket: the checks, then the session.
pub(crate) async fn shell(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let (id, job) = match lease_job(&s, &id, "shell") {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    if let Err(r) = check_access(
        &s.store,
        &headers,
        s.venue(),
        (AccessTo::Shell, id, s.cfg.owner),
        job.tenant,
        "a lease's shell is its tenant's: open it with `gridlease shell` (an access signed per session in header x-gridlease-auth)",
    ) {
        return r.into_response();
    }
    let kind = crate::shared::terms(&job).and_then(|t| JobKind::from_code(t.jobKind));
    if !matches!(kind, Some(JobKind::Container | JobKind::Service)) {
        return deny(
            StatusCode::CONFLICT,
            "this lease's job is built in (matmul_i8): it runs no container, so it has no shell",
        );
    }
    let Some(x) = s.container.clone() else {
        return deny(
            StatusCode::CONFLICT,
            "this node runs container jobs as local processes (jobs.executor = \"process\"): it offers no shell",
        );
    };
    if job.state != JobState::Running {
        return deny(
            StatusCode::CONFLICT,
            &format!(
                "the lease's job is {}, not running: a shell opens only while its container runs",
                job.state.name()
            ),
        );
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            return deny(
                StatusCode::BAD_REQUEST,
                &format!("/shell/<lease> is a WebSocket ({e}): open it with `gridlease shell`"),
            );
        }
    };
    let Some(slot) = Sessions::take(&s, id) else {
        return deny(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "too many shells open (at most {MAX_PER_LEASE} per lease, {MAX_SESSIONS} per node): close one and retry"
            ),
        );
    };
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            session(&s, &x, id, socket).await;
        })
}

/// Send `ended` as the last message, and close.
async fn end(ws: &mut WebSocket, ended: &Ended) {
    let text = serde_json::to_string(ended).unwrap_or_default();
    let _ = ws.send(Message::text(text)).await;
    let _ = ws.send(Message::Close(None)).await;
}

/// One session: its [`Start`], the exec, then the bridge.
async fn session(s: &Shared, x: &ContainerExecutor, lease: B256, mut ws: WebSocket) {
    let start = match tokio::time::timeout(START_WITHIN, ws.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<Start>(&t) {
            Ok(start) => start,
            Err(e) => {
                return end(
                    &mut ws,
                    &Ended::Error(format!("the first message is not a start: {e}")),
                )
                .await;
            }
        },
        Ok(_) => {
            return end(
                &mut ws,
                &Ended::Error("the first message must be a start (text, JSON)".into()),
            )
            .await;
        }
        Err(_) => {
            return end(
                &mut ws,
                &Ended::Error(format!("no start within {START_WITHIN:?}")),
            )
            .await;
        }
    };
    if let Err(why) = start.check() {
        return end(&mut ws, &Ended::Error(why)).await;
    }
    let cmd = start.command();
    let mut e = match x.exec(lease, &cmd, start.tty, start.term.as_deref()).await {
        Ok(e) => e,
        Err(why) => return end(&mut ws, &Ended::Error(why.to_string())).await,
    };
    if start.tty
        && start.cols > 0
        && start.rows > 0
        && let Err(why) = x.exec_resize(&e.id, start.cols, start.rows).await
    {
        warn!(lease = %lease, error = %why, "cannot size the shell's terminal");
    }
    info!(lease = %lease, command = ?cmd, tty = start.tty, "shell opened");
    let left = bridge(s, x, &mut e, &mut ws).await;
    let ended = if left {
        None
    } else {
        Some(match x.exec_exit(&e.id).await {
            Ok(Some(code)) => Ended::Exit(code),
            Ok(None) => Ended::Error("the command's exit status is not known".into()),
            Err(why) => Ended::Error(format!("the command's exit status: {why}")),
        })
    };
    info!(lease = %lease, ended = ?ended, "shell closed");
    if let Some(ended) = ended {
        end(&mut ws, &ended).await;
    }
}

/// Move bytes both ways until the command's output ends (false) or the tenant leaves (true).
async fn bridge(s: &Shared, x: &ContainerExecutor, e: &mut ExecStream, ws: &mut WebSocket) -> bool {
    let mut demux = crate::docker::Demux::default();
    let mut frames = Vec::new();
    let tty = e.tty;
    let out = |data: &[u8], demux: &mut crate::docker::Demux, frames: &mut Vec<Vec<u8>>| {
        if tty {
            frames.push(output_frame(STDOUT, data));
        } else {
            demux.feed(data, |stream, payload| {
                let stream = if stream == 2 { STDERR } else { STDOUT };
                frames.push(output_frame(stream, payload));
            });
        }
    };
    let early = std::mem::take(&mut e.early);
    out(&early, &mut demux, &mut frames);
    let mut buf = vec![0u8; 32 << 10];
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut input_open = true;
    loop {
        for f in frames.drain(..) {
            if ws.send(Message::binary(f)).await.is_err() {
                return true;
            }
        }
        tokio::select! {
            read = e.read.read(&mut buf) => match read {
                Ok(0) | Err(_) => return false,
                Ok(n) => out(&buf[..n], &mut demux, &mut frames),
            },
            m = ws.recv() => match m {
                Some(Ok(Message::Binary(b))) => {
                    if input_open && e.write.write_all(&b).await.is_err() {
                        input_open = false;
                    }
                }
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<Control>(&t) {
                    Ok(Control::Resize { cols, rows }) => {
                        if e.tty && let Err(why) = x.exec_resize(&e.id, cols, rows).await {
                            warn!(error = %why, "cannot resize the shell's terminal");
                        }
                    }
                    Ok(Control::Eof) => {
                        input_open = false;
                        let _ = e.write.shutdown().await;
                    }
                    Err(_) => {}
                },
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                // Gone: its input ends (a shell exits on it; a terminal's gets a hang-up).
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    let _ = e.write.shutdown().await;
                    return true;
                }
            },
            _ = ping.tick() => {
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    let _ = e.write.shutdown().await;
                    return true;
                }
            }
            () = s.kill.cancelled() => {
                end(ws, &Ended::Error("the node is shutting down".into())).await;
                return true;
            }
        }
    }
}

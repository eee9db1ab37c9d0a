//! `GET /shell/<lease id>`: the tenant's command in its lease's running container, over a
//! WebSocket ([`gridlease_fetch::shell`] has the protocol; ACC-01, ACC-02).
//!
//! Refused before the upgrade, each with its reason: an access that is not the lease's tenant's
//! for this shell (ACC-01), a lease whose job is built in, runs as a local process or whose
//! container is not running, a node without a container engine, more than [`MAX_PER_LEASE`]
//! sessions of one lease, [`MAX_PER_TENANT`] of one tenant or [`MAX_SESSIONS`] in all at once, and
//! more starts than the ration ([`TENANT_STARTS`], [`NODE_STARTS`]). The command is then
//! started in the container the node made for the lease
//! ([`crate::docker::ContainerExecutor::exec`]) and its streams bridged to the socket until it
//! exits, the container stops, the tenant leaves or goes silent, or the node shuts down; a command
//! still running then is killed.

use std::{collections::HashMap, sync::Arc, time::Duration};

use alloy::primitives::{Address, B256};
use axum::{
    extract::{
        Path, State,
        ws::{Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt};
use gridlease_daemon::lock;
use gridlease_fetch::{
    access::AccessTo,
    shell::{Control, Ended, MAX_FRAME, PING_EVERY, STDERR, STDOUT, Start, output_frame},
};
use gridlease_primitives::protocol::JobKind;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
    time::Instant,
};
use tracing::{info, warn};

use crate::{
    api::{
        auth::{deny, take_nonce, verify_access},
        results::lease_job,
    },
    docker::{
        ContainerExecutor,
        exec::{ExecRefusal, ExecStream},
    },
    shared::{Shared, ShellBook},
    state::JobState,
};

/// Sessions of one lease open at once.
pub const MAX_PER_LEASE: usize = 4;
/// Sessions one tenant has open at once, all its leases together.
pub const MAX_PER_TENANT: usize = 8;
/// Sessions open at once, all leases together.
pub const MAX_SESSIONS: usize = 64;
/// How long the tenant has, once upgraded, to send its [`Start`].
const START_WITHIN: Duration = Duration::from_secs(10);
/// A session whose tenant sent nothing (not even the answer to a ping) for this long is gone.
const SILENT_FOR: Duration = Duration::from_secs(2 * PING_EVERY.as_secs());
/// Resizes reach the engine at most this often (the latest size wins).
const RESIZE_EVERY: Duration = Duration::from_millis(250);
/// Output of a stream the engine may have sent without its frame being whole: past it, the
/// engine's stream is not one.
const MAX_UNFRAMED: usize = 1 << 20;
/// Longest reason a session's end gives.
const MAX_REASON: usize = 1_000;

/// Session starts one tenant may make at once, then one every [`TENANT_START_EVERY`]: each exec
/// leaves a monitor process (about 3 MB) on the engine's host for a while after it ends (Podman
/// keeps an exec's `conmon` five minutes for its exit status), so a tenant opening and closing
/// sessions in a loop would fill the host with them. A script running a command a second or two
/// apart is not held.
pub const TENANT_STARTS: f64 = 30.0;
/// How often a tenant gets another session start.
pub const TENANT_START_EVERY: Duration = Duration::from_secs(2);
/// Session starts the node makes at once, then one every [`NODE_START_EVERY`]: at most about 420
/// exec monitors on a Podman host (some 1.3 GB), all tenants together.
pub const NODE_STARTS: f64 = 120.0;
/// How often the node gets another session start.
pub const NODE_START_EVERY: Duration = Duration::from_secs(1);
/// Tenants whose starts are tracked at once before the full ones are forgotten.
const TRACKED: usize = 10_000;

/// One open session, given back when dropped.
struct Slot {
    s: Arc<Shared>,
    lease: B256,
    tenant: Address,
}

/// Take one start from a bucket of `cap` refilled one per `every`, as of `now`.
fn take_start(
    bucket: &mut (f64, std::time::Instant),
    cap: f64,
    every: Duration,
    now: std::time::Instant,
) -> bool {
    let refill = now.duration_since(bucket.1).as_secs_f64() / every.as_secs_f64();
    bucket.0 = (bucket.0 + refill).min(cap);
    bucket.1 = now;
    if bucket.0 >= 1.0 {
        bucket.0 -= 1.0;
        true
    } else {
        false
    }
}

/// Whether `book` lets `tenant` open a session of `lease` at `now`, counted as open if so; the
/// refusal otherwise.
fn admit(
    book: &mut ShellBook,
    lease: B256,
    tenant: Address,
    now: std::time::Instant,
) -> Result<(), String> {
    let all: usize = book.per_lease.values().sum();
    let of_lease = book.per_lease.get(&lease).copied().unwrap_or(0);
    let of_tenant = book.per_tenant.get(&tenant).copied().unwrap_or(0);
    if of_lease >= MAX_PER_LEASE || of_tenant >= MAX_PER_TENANT || all >= MAX_SESSIONS {
        return Err(format!(
            "too many shells open (at most {MAX_PER_LEASE} per lease, {MAX_PER_TENANT} per tenant, {MAX_SESSIONS} per node): close one and retry"
        ));
    }
    if book.tenant_starts.len() >= TRACKED && !book.tenant_starts.contains_key(&tenant) {
        let full = TENANT_STARTS * TENANT_START_EVERY.as_secs_f64();
        book.tenant_starts
            .retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() < full);
    }
    let mut theirs = book
        .tenant_starts
        .get(&tenant)
        .copied()
        .unwrap_or((TENANT_STARTS, now));
    let mut node = book.node_starts.unwrap_or((NODE_STARTS, now));
    if !take_start(&mut theirs, TENANT_STARTS, TENANT_START_EVERY, now) {
        return Err(format!(
            "this tenant started too many shells lately (one every {} s after the first {TENANT_STARTS}): retry in a few seconds",
            TENANT_START_EVERY.as_secs()
        ));
    }
    if !take_start(&mut node, NODE_STARTS, NODE_START_EVERY, now) {
        return Err("this node started too many shells lately: retry in a few seconds".into());
    }
    book.tenant_starts.insert(tenant, theirs);
    book.node_starts = Some(node);
    *book.per_lease.entry(lease).or_default() += 1;
    *book.per_tenant.entry(tenant).or_default() += 1;
    Ok(())
}

impl Slot {
    /// A slot for a session of `tenant`'s `lease`, if every limit allows one.
    fn take(s: &Arc<Shared>, lease: B256, tenant: Address) -> Result<Self, String> {
        admit(
            &mut lock(&s.shells.0),
            lease,
            tenant,
            std::time::Instant::now(),
        )?;
        Ok(Self {
            s: s.clone(),
            lease,
            tenant,
        })
    }
}

/// Count one session of `key` less in `map`.
fn give_back<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut book = lock(&self.s.shells.0);
        give_back(&mut book.per_lease, &self.lease);
        give_back(&mut book.per_tenant, &self.tenant);
    }
}

/// `GET /shell/<lease id>`, upgraded to a WebSocket: the checks, then the session. The access is
/// verified first (a stranger learns nothing of the lease), and its nonce is taken last, once
/// every other check passed: a refused session costs the tenant none of its nonces.
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
    let grant = match verify_access(
        &headers,
        s.venue(),
        (AccessTo::Shell, id, s.cfg.owner),
        job.tenant,
        "a lease's shell is its tenant's: open it with `gridlease shell` (an access signed per session in header x-gridlease-auth)",
    ) {
        Ok(g) => g,
        Err(r) => return r.into_response(),
    };
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
    // Its container, before any session start or nonce is spent on it (the job may be pulling
    // its image yet): the tenant is told at once, and retries cost it nothing.
    let container = match x.lease_container(id).await {
        Ok(c) => c,
        Err(ExecRefusal::NotRunning) => {
            return deny(StatusCode::CONFLICT, &ExecRefusal::NotRunning.to_string());
        }
        Err(ExecRefusal::Engine(why)) => {
            warn!(lease = %id, error = %why, "the engine could not be asked for a shell's container");
            return deny(
                StatusCode::SERVICE_UNAVAILABLE,
                "the container engine did not answer (the node's log says why): retry later",
            );
        }
    };
    let slot = match Slot::take(&s, id, job.tenant) {
        Ok(slot) => slot,
        Err(why) => return deny(StatusCode::TOO_MANY_REQUESTS, &why),
    };
    if let Err(r) = take_nonce(
        &s.store,
        (grant.signer, grant.nonce, grant.expiry),
        crate::unix_now(),
    ) {
        return r.into_response();
    }
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            session(&s, &x, (id, &container), socket).await;
        })
}

/// Send `ended` as the last message (its reason cut short), and close.
async fn end<S>(ws: &mut S, ended: Ended)
where
    S: futures_util::Sink<Message> + Unpin,
{
    let ended = match ended {
        Ended::Error(why) if why.chars().count() > MAX_REASON => Ended::Error(format!(
            "{}...",
            why.chars().take(MAX_REASON).collect::<String>()
        )),
        e => e,
    };
    let text = serde_json::to_string(&ended).unwrap_or_default();
    let _ = ws.send(Message::text(text)).await;
    let _ = ws.send(Message::Close(None)).await;
}

/// One session in `lease`'s `container`: its [`Start`], the exec, then the bridge; an exec still
/// running when the session ends (the tenant left, went silent, or the node is shutting down) is
/// killed.
async fn session(
    s: &Shared,
    x: &ContainerExecutor,
    (lease, container): (B256, &str),
    mut ws: WebSocket,
) {
    let start = match tokio::time::timeout(START_WITHIN, ws.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<Start>(&t) {
            Ok(start) => start,
            Err(e) => {
                return end(
                    &mut ws,
                    Ended::Error(format!("the first message is not a start: {e}")),
                )
                .await;
            }
        },
        Ok(_) => {
            return end(
                &mut ws,
                Ended::Error("the first message must be a start (text, JSON)".into()),
            )
            .await;
        }
        Err(_) => {
            return end(
                &mut ws,
                Ended::Error(format!("no start within {START_WITHIN:?}")),
            )
            .await;
        }
    };
    if let Err(why) = start.check() {
        return end(&mut ws, Ended::Error(why)).await;
    }
    let cmd = start.command();
    let e = match x
        .exec(container, &cmd, start.tty, start.term.as_deref())
        .await
    {
        Ok(e) => e,
        Err(ExecRefusal::NotRunning) => {
            return end(&mut ws, Ended::Error(ExecRefusal::NotRunning.to_string())).await;
        }
        Err(ExecRefusal::Engine(why)) => {
            // The engine's own words may name the host's paths: they stay in the node's log.
            warn!(lease = %lease, error = %why, "the engine could not start a shell");
            return end(
                &mut ws,
                Ended::Error(
                    "the container engine could not start the command (the node's log says why)"
                        .into(),
                ),
            )
            .await;
        }
    };
    if start.tty
        && start.cols > 0
        && start.rows > 0
        && let Err(why) = x.exec_resize(&e.id, start.cols, start.rows).await
    {
        warn!(lease = %lease, error = %why, "cannot size the shell's terminal");
    }
    // The program only: a tenant's arguments may carry its secrets.
    let program = cmd.first().map_or("", String::as_str);
    info!(lease = %lease, program, args = cmd.len().saturating_sub(1), tty = start.tty, "shell opened");
    let exec = e.id.clone();
    let (mut sink, stream) = ws.split();
    let outcome = bridge(s, x, e, &mut sink, stream).await;
    let ended = match outcome {
        Outcome::Exited => Some(match x.exec_exit(&exec).await {
            Ok(Some(code)) => Ended::Exit(code),
            // Its streams closed while it runs on (a detach key sequence, say): it is killed.
            Ok(None) => Ended::Error(
                "the command's streams closed while it still ran: it was stopped".into(),
            ),
            Err(why) => {
                warn!(lease = %lease, error = %why, "the shell's exit status");
                Ended::Error(
                    "the command's exit status is not known (the node's log says why)".into(),
                )
            }
        }),
        Outcome::Broken(why) => Some(Ended::Error(why.into())),
        Outcome::Shutdown => Some(Ended::Error("the node is shutting down".into())),
        Outcome::Left => None,
    };
    if !matches!(ended, Some(Ended::Exit(_))) {
        match x.exec_kill(&exec).await {
            Ok(true) => info!(lease = %lease, "the shell's command outlived its session: killed"),
            Ok(false) => {}
            Err(why) => warn!(lease = %lease, error = %why, "cannot stop the shell's command"),
        }
    }
    info!(lease = %lease, ended = ?ended, "shell closed");
    if let Some(ended) = ended {
        end(&mut sink, ended).await;
    }
}

/// How a bridge ended.
#[derive(Debug)]
enum Outcome {
    /// The command's output ended.
    Exited,
    /// The tenant left or went silent.
    Left,
    /// The engine's stream made no sense.
    Broken(&'static str),
    /// The node is shutting down.
    Shutdown,
}

/// Input for the command: bytes, or its end.
enum Input {
    Data(Vec<u8>),
    Eof,
}

/// Move bytes both ways until the command's output ends, the tenant leaves or goes silent, or
/// the node shuts down. The command's input is written by a task of its own, fed a few messages
/// ahead: a command that stops reading its input while it writes output (a filter given more than
/// a pipe holds) stops the tenant's input, never its own output, and pings go on.
async fn bridge<S>(
    s: &Shared,
    x: &ContainerExecutor,
    e: ExecStream,
    sink: &mut S,
    mut stream: futures_util::stream::SplitStream<WebSocket>,
) -> Outcome
where
    S: futures_util::Sink<Message> + Unpin,
{
    let ExecStream {
        id,
        tty,
        early,
        mut read,
        mut write,
    } = e;
    let (tx, mut rx) = mpsc::channel::<Input>(4);
    let writer = tokio::spawn(async move {
        while let Some(input) = rx.recv().await {
            match input {
                Input::Data(b) => {
                    if write.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Input::Eof => break,
            }
        }
        // Dropped: the command's input ends (a shell exits on it).
        drop(write);
        // Whatever still comes is dropped: the command no longer reads.
        while rx.recv().await.is_some() {}
    });
    let mut demux = crate::docker::Demux::default();
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut out = |data: &[u8], frames: &mut Vec<Vec<u8>>| {
        let mut push = |stream: u8, payload: &[u8]| {
            for piece in payload.chunks(MAX_FRAME - 1) {
                frames.push(output_frame(stream, piece));
            }
        };
        if tty {
            push(STDOUT, data);
        } else {
            demux.feed(data, |stream, payload| {
                push(if stream == 2 { STDERR } else { STDOUT }, payload);
            });
        }
        demux.buffered() <= MAX_UNFRAMED
    };
    if !out(&early, &mut frames) {
        writer.abort();
        return Outcome::Broken("the engine's stream is not framed");
    }
    let mut buf = vec![0u8; 32 << 10];
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut seen = Instant::now();
    let (mut pending, mut input_open) = (None::<Input>, true);
    let (mut size, mut resized) = (None::<(u16, u16)>, Instant::now());
    let outcome = 'bridge: loop {
        for f in frames.drain(..) {
            if sink.send(Message::binary(f)).await.is_err() {
                break 'bridge Outcome::Left;
            }
        }
        tokio::select! {
            got = read.read(&mut buf) => match got {
                Ok(0) | Err(_) => break Outcome::Exited,
                Ok(n) => {
                    if !out(&buf[..n], &mut frames) {
                        break Outcome::Broken("the engine's stream is not framed");
                    }
                }
            },
            permit = tx.reserve(), if pending.is_some() => {
                if let (Ok(p), Some(input)) = (permit, pending.take()) {
                    p.send(input);
                }
            }
            m = stream.next(), if pending.is_none() => {
                seen = Instant::now();
                match m {
                    Some(Ok(Message::Binary(b))) => {
                        if input_open {
                            pending = Some(Input::Data(b.to_vec()));
                        }
                    }
                    Some(Ok(Message::Text(t))) => match serde_json::from_str::<Control>(&t) {
                        Ok(Control::Resize { cols, rows }) => size = Some((cols, rows)),
                        Ok(Control::Eof) => {
                            if std::mem::replace(&mut input_open, false) {
                                pending = Some(Input::Eof);
                            }
                        }
                        Err(_) => {}
                    },
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break Outcome::Left,
                }
            }
            () = tokio::time::sleep_until(resized + RESIZE_EVERY), if size.is_some() => {
                if let Some((cols, rows)) = size.take()
                    && tty
                    && let Err(why) = x.exec_resize(&id, cols, rows).await
                {
                    warn!(error = %why, "cannot resize the shell's terminal");
                }
                resized = Instant::now();
            }
            _ = ping.tick() => {
                if seen.elapsed() > SILENT_FOR {
                    break Outcome::Left;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break Outcome::Left;
                }
            }
            () = s.kill.cancelled() => break Outcome::Shutdown,
        }
    };
    writer.abort();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(book: &mut ShellBook) {
        book.per_lease.clear();
        book.per_tenant.clear();
    }

    /// Sessions are counted open per lease, tenant and node; starts are rationed per tenant and
    /// per node, and come back with time.
    #[test]
    fn sessions_are_bounded_open_and_rationed_as_they_start() {
        let mut book = ShellBook::default();
        let t0 = std::time::Instant::now();
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let lease = |i: u8| B256::repeat_byte(i);
        for _ in 0..MAX_PER_LEASE {
            admit(&mut book, lease(1), a, t0).expect("open");
        }
        let e = admit(&mut book, lease(1), a, t0).expect_err("a fifth of one lease");
        assert!(e.contains("per lease"), "{e}");
        for i in 0..(MAX_PER_TENANT - MAX_PER_LEASE) as u8 {
            admit(&mut book, lease(10 + i), a, t0).expect("open");
        }
        let e = admit(&mut book, lease(30), a, t0).expect_err("a ninth of one tenant");
        assert!(e.contains("per tenant"), "{e}");
        // Closed again: the open counts fall, the starts stay spent.
        closed(&mut book);
        for _ in 0..(TENANT_STARTS as usize - MAX_PER_TENANT) {
            admit(&mut book, lease(1), a, t0).expect("start");
            closed(&mut book);
        }
        let e = admit(&mut book, lease(1), a, t0).expect_err("one start more than at once");
        assert!(e.contains("started too many"), "{e}");
        // Another tenant is not held by it; time gives the first one another start.
        admit(&mut book, lease(2), b, t0).expect("another tenant");
        admit(&mut book, lease(1), a, t0 + TENANT_START_EVERY).expect("one more, later");
        // The node's own ration holds for all tenants together.
        let mut book = ShellBook::default();
        let mut refused = None;
        for i in 0..NODE_STARTS as u64 + 1 {
            let tenant = Address::from_word(B256::from(alloy::primitives::U256::from(i + 100)));
            match admit(&mut book, lease(3), tenant, t0) {
                Ok(()) => closed(&mut book),
                Err(e) => refused = Some((i, e)),
            }
        }
        let (at, e) = refused.expect("the node's ration ran out");
        assert_eq!(at, NODE_STARTS as u64);
        assert!(e.contains("this node started too many"), "{e}");
    }
}

//! The daemon as a process: structured logs, one process per state directory, signals, a closed
//! stdout, a wall clock and a poison-tolerant lock.

use std::{path::Path, sync::Mutex};

/// Structured logs of the daemons on stderr: `info` and up, or with `verbose` also `debug` of the
/// gridlease crates (not of every dependency).
pub fn logging(verbose: bool) {
    use tracing_subscriber::{
        filter::Targets, layer::SubscriberExt as _, util::SubscriberInitExt as _,
    };
    let ours = if verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let filter = Targets::new()
        .with_default(tracing::Level::INFO)
        .with_target("gridlease_chain", ours)
        .with_target("gridlease_daemon", ours)
        .with_target("gridlease_fetch", ours)
        .with_target("gridlease_provider", ours)
        .with_target("gridlease_keeper", ours);
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init();
}

/// Seconds since the Unix epoch (local clock: for bookkeeping only; deadlines use chain time).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Lock `m`, also after a panic elsewhere: the daemons keep every guarded value consistent
/// between statements (single SQLite statements or transactions, plain maps and values).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hold `<dir>/<name>` locked for the rest of the process (the lock goes with it, even on
/// `kill -9`), so two daemons never share a state directory and race each other's nonces (OFF-05).
/// `what` names the daemon in the message.
pub fn exclusive(dir: &Path, name: &str, what: &str) -> Result<(), String> {
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    if file.try_lock().is_err() {
        return Err(format!(
            "another {what} runs on {} (lock {} is held): two on one key would race each other's nonces",
            dir.display(),
            path.display()
        ));
    }
    std::mem::forget(file);
    Ok(())
}

/// SIGINT or SIGTERM cancels `stop` (the daemon stops taking work and lets what runs finish);
/// a second signal exits at once with 130 (every step of the daemons' state is consistent on
/// disk, so nothing is lost).
pub fn on_signals(stop: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        for n in 0.. {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if n == 0 {
                stop.cancel();
            } else {
                tracing::error!("second signal: exiting now");
                std::process::exit(130);
            }
        }
    });
}

/// For a one-shot command that prints (`status | head`): a closed stdout ends the process quietly,
/// as it does `cat`, instead of a panic in `println!`. Rust ignores SIGPIPE so a daemon's socket
/// writes fail with an error instead; call this only in commands that serve nothing.
pub fn quiet_broken_pipe() {
    // SAFETY: restores the default disposition of one signal before any thread writes to stdout;
    // no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

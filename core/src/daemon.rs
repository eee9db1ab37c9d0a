//! What both daemons (the provider node and the keeper) need to start and run: structured logs,
//! the deployment checked against the chain it claims to describe, one process per state
//! directory, a wall clock, and a poison-tolerant lock.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
};

use alloy::providers::Provider;

use crate::{
    chain::{Client, classify_rpc},
    deployments::Deployments,
};

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
        .with_target("gridlease_core", ours)
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

/// Load the deployments file `path` (key `chain.deployments` in messages) for `client`'s chain
/// and check that the market is really there: refuses the wrong chain (OFF-18) and a stale file.
pub async fn deployment(client: &Client, path: &Path) -> Result<Deployments, String> {
    let d = Deployments::load(path, client.chain_id).map_err(|e| {
        format!(
            "chain.deployments {} does not describe chain {} (OFF-18: refusing to run on the wrong chain): {e}",
            path.display(),
            client.chain_id
        )
    })?;
    let market = d.address("Market").map_err(|e| e.to_string())?;
    let code = client
        .provider
        .get_code_at(market)
        .await
        .map_err(|e| classify_rpc(e).to_string())?;
    if code.is_empty() {
        return Err(format!(
            "no Market contract at {market} on chain {}: the deployments file is stale (redeploy, or point chain.deployments at the right file)",
            client.chain_id
        ));
    }
    Ok(d)
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

/// A daemon configuration error: the file, the dotted key, and what to write instead.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not TOML, or a key/type the schema does not have (TOML names it and its line).
    #[error("{path}: {why}")]
    Syntax {
        /// The file.
        path: std::path::PathBuf,
        /// TOML's message, with line and key.
        why: String,
    },
    /// A value the schema allows but the daemon cannot use.
    #[error("{path}: {key}: {why}")]
    Value {
        /// The file.
        path: std::path::PathBuf,
        /// Dotted key.
        key: String,
        /// Why, and what to write instead.
        why: String,
    },
    /// The file cannot be read.
    #[error("cannot read {path}: {err} (write a sample with `{daemon} init`)")]
    Unreadable {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        err: std::io::Error,
        /// The daemon whose `init` writes one.
        daemon: &'static str,
    },
}

/// A daemon's `chain.rpc`: an http(s):// or ws(s):// URL, trimmed; the error says what is
/// accepted.
pub fn rpc_url(u: &str) -> Result<String, String> {
    let u = u.trim();
    if ["http://", "https://", "ws://", "wss://"]
        .iter()
        .any(|s| u.starts_with(s))
    {
        Ok(u.to_owned())
    } else {
        Err(format!(
            "\"{u}\" is not a JSON-RPC URL: expected http(s)://HOST:PORT or ws(s)://HOST:PORT"
        ))
    }
}

/// Read the configuration file `path` of `daemon`.
pub fn read_config(path: &Path, daemon: &'static str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|err| ConfigError::Unreadable {
        path: path.to_owned(),
        err,
        daemon,
    })
}

/// Parse `text` (the file `path`) as the raw TOML schema `T`; unknown keys are refused when `T`
/// denies them, with TOML's line and key in the message.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        why: e.to_string().trim().replace('\n', " "),
    })
}

/// A daemon's configuration file under validation: it names the file and the key in every error
/// and resolves relative paths against the file's folder. Both daemons read theirs through it.
#[derive(Clone, Copy, Debug)]
pub struct ConfigFile<'a> {
    path: &'a Path,
    base: &'a Path,
}

impl<'a> ConfigFile<'a> {
    /// The file `path`, its relative paths taken from `base`.
    pub fn new(path: &'a Path, base: &'a Path) -> Self {
        Self { path, base }
    }

    /// Read `path` of `daemon` and hand its text, with the file, to `parse` (relative paths are
    /// relative to the file's folder).
    pub fn load<T>(
        path: &Path,
        daemon: &'static str,
        parse: impl FnOnce(&str, &Path, &Path) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        let text = read_config(path, daemon)?;
        parse(&text, path, path.parent().unwrap_or(Path::new(".")))
    }

    /// `text` as the raw TOML schema `T` ([`parse_toml`]).
    pub fn parse<T: serde::de::DeserializeOwned>(&self, text: &str) -> Result<T, ConfigError> {
        parse_toml(text, self.path)
    }

    /// The error for key `key`: `why`.
    pub fn bad(&self, key: &str, why: impl Into<String>) -> ConfigError {
        ConfigError::Value {
            path: self.path.to_owned(),
            key: key.to_owned(),
            why: why.into(),
        }
    }

    /// `p`, relative to the file's folder unless absolute.
    pub fn rel(&self, p: PathBuf) -> PathBuf {
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }
}

/// The one retry delay of the daemons: `base` after a success, doubled after each failure up to
/// `max`. A loop sleeps [`Backoff::delay`], then reports how the attempt went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: std::time::Duration,
    max: std::time::Duration,
    delay: std::time::Duration,
}

impl Backoff {
    /// Starting (and after each success) at `base`, never longer than `max`.
    pub const fn new(base: std::time::Duration, max: std::time::Duration) -> Self {
        Self {
            base,
            max,
            delay: base,
        }
    }

    /// How long to wait before the next attempt.
    pub const fn delay(&self) -> std::time::Duration {
        self.delay
    }

    /// An attempt failed: the next wait doubles (up to the maximum). Returns it.
    pub fn failed(&mut self) -> std::time::Duration {
        self.delay = (self.delay.max(self.base) * 2).min(self.max);
        self.delay
    }

    /// An attempt succeeded: the next wait is the base again.
    pub fn succeeded(&mut self) {
        self.delay = self.base;
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Backoff;

    #[test]
    fn backoff_doubles_to_its_maximum_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(1));
        assert_eq!(b.delay(), Duration::from_millis(250));
        assert_eq!(b.failed(), Duration::from_millis(500));
        assert_eq!(b.failed(), Duration::from_secs(1));
        assert_eq!(b.failed(), Duration::from_secs(1));
        b.succeeded();
        assert_eq!(b.delay(), Duration::from_millis(250));
    }
}

//! `gridlease shell`: a command (by default a shell) in a lease's running container, on its
//! provider's node, to its tenant only (ACC-01, ACC-02; the protocol is
//! [`gridlease_fetch::shell`]). The session's access is signed here with the tenant's key for
//! this lease, this provider and this market.
//!
//! Like `ssh`: without a command, and with a terminal on both ends, the command gets a terminal
//! (this one is put in raw mode, and its size follows this one's); with a command, it gets this
//! process's input as its standard input (the end of it closes the command's), and its standard
//! output and error come out on this process's. The exit status is the command's.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use gridlease_fetch::{
    access::{AccessTo, access},
    shell::{Control, Ended, Event, STDERR, SessionWriter, ShellError, Start, is_term},
};
use serde_json::json;
use tokio::signal::unix::SignalKind;
use tokio::sync::mpsc;

use crate::{
    ctx::{Ctx, Output, user},
    logs::tenant_node,
};

/// How the command is to be run.
#[derive(Debug)]
pub(crate) struct Opts {
    /// The command and its arguments (none: the container's shell).
    pub(crate) command: Vec<String>,
    /// Force a terminal (`Some(true)`) or none (`Some(false)`); `None`: a terminal when no
    /// command is given and both ends of this process are terminals.
    pub(crate) tty: Option<bool>,
    /// The node's base URL instead of the one found.
    pub(crate) node: Option<String>,
}

/// Run `shell`.
pub(crate) async fn run(ctx: &Ctx, id: &str, o: Opts) -> Result<Output> {
    let (f, provider, base) = tenant_node(ctx, id, o.node.as_deref(), "shell").await?;
    let id = f.id;
    let wallet = ctx.wallet()?;
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let tty = o.tty.unwrap_or(o.command.is_empty() && terminal);
    let (cols, rows) = if tty {
        term::size().unwrap_or((0, 0))
    } else {
        (0, 0)
    };
    let start = Start {
        cmd: o.command,
        tty,
        cols,
        rows,
        term: std::env::var("TERM").ok().filter(|t| is_term(t)),
    };
    if let Err(why) = start.check() {
        return user(format!("cannot run that: {why}"));
    }
    let auth = access(wallet, ctx.venue(), AccessTo::Shell, id, provider)
        .ok_or_else(|| anyhow::anyhow!("the wallet cannot sign"))?;
    let session = match ctx.fetcher.shell(&base, id, &auth, &start).await {
        Ok(s) => s,
        Err(ShellError::Refused { status, reason }) => {
            return user(format!(
                "the provider's node at {base} refused the shell of {id} ({status}): {reason}"
            ));
        }
        Err(e) => {
            return user(format!(
                "cannot open the shell of {id} at {base}: {e}. Name another address of the node with --node URL"
            ));
        }
    };
    // Raw mode only when this end is a terminal: keys go to the command as typed.
    let raw = (tty && std::io::stdin().is_terminal())
        .then(term::Raw::enter)
        .flatten();
    let (writer, mut reader) = session.split();
    // Input (and resizes) go on in a task of their own: a command that does not read its input
    // while it writes output (a filter fed more than a pipe holds) never stops its output here.
    let sending = tokio::spawn(send_input(writer, tty));
    let mut hangup = signal(SignalKind::hangup());
    let mut terminate = signal(SignalKind::terminate());
    let ended = loop {
        tokio::select! {
            ev = reader.next() => match ev {
                Some(Ok(Event::Output { stream, data })) => {
                    let written = if stream == STDERR {
                        let mut e = std::io::stderr().lock();
                        e.write_all(&data).and_then(|()| e.flush())
                    } else {
                        let mut o = std::io::stdout().lock();
                        o.write_all(&data).and_then(|()| o.flush())
                    };
                    // Our own output is gone (`| head`): so is the session.
                    if written.is_err() {
                        break Ended::Error("the output was closed".into());
                    }
                }
                Some(Ok(Event::Ended(e))) => break e,
                Some(Err(e)) => break Ended::Error(e.to_string()),
                None => break Ended::Error("the node closed the session without an exit status".into()),
            },
            () = signalled(&mut hangup) => break Ended::Error("hung up".into()),
            () = signalled(&mut terminate) => break Ended::Error("terminated".into()),
        }
    };
    // Leaving closes the connection: the node kills a command still running.
    sending.abort();
    drop(raw);
    match ended {
        Ended::Exit(code) => {
            let status = u8::try_from(code).unwrap_or(255);
            Ok(Output {
                human: String::new(),
                json: json!({ "lease": id, "provider": provider, "node": base, "exitStatus": status }),
            })
        }
        Ended::Error(why) => user(format!("the shell of {id} ended: {why}")),
    }
}

/// Wait for `sig` (never, if it could not be set up).
async fn signalled(sig: &mut Option<tokio::signal::unix::Signal>) {
    match sig.as_mut() {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Set up a handler for `kind`, if the system allows.
fn signal(kind: SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).ok()
}

/// Send this process's input to the command, its end as the end of the command's input, and the
/// terminal's new size after each change (with a terminal), until the session is gone.
async fn send_input(mut w: SessionWriter, tty: bool) {
    let mut input = Some(stdin_reader());
    let mut resized = signal(SignalKind::window_change());
    loop {
        let sent = tokio::select! {
            chunk = async { match input.as_mut() {
                Some(r) => r.recv().await,
                None => std::future::pending().await,
            } } => match chunk {
                Some(bytes) => w.input(&bytes).await,
                // End of input: the command's input ends (a terminal's ^D is a byte, not this).
                None => {
                    input = None;
                    w.control(&Control::Eof).await
                }
            },
            () = signalled(&mut resized) => match term::size() {
                Some((cols, rows)) if tty => w.control(&Control::Resize { cols, rows }).await,
                _ => Ok(()),
            },
        };
        if sent.is_err() {
            return;
        }
    }
}

/// This process's input, read on a thread of its own (a read of a terminal cannot be
/// cancelled: a runtime's blocking read would keep the process from exiting), in chunks.
fn stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 16 << 10];
        loop {
            match std::io::Read::read(&mut stdin, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// The terminal: its size, raw mode.
mod term {
    /// The terminal's (columns, rows), from standard output.
    pub(super) fn size() -> Option<(u16, u16)> {
        // SAFETY: TIOCGWINSZ writes one winsize into `ws`, which lives for the call.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0;
        (ok && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
    }

    /// Standard input in raw mode until dropped (then as it was).
    pub(super) struct Raw(libc::termios);

    impl Raw {
        /// Enter raw mode; `None` if the terminal cannot be set.
        pub(super) fn enter() -> Option<Self> {
            // SAFETY: tcgetattr/tcsetattr read and write one termios, which lives for the call.
            unsafe {
                let mut before: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(0, &mut before) != 0 {
                    return None;
                }
                let mut raw = before;
                libc::cfmakeraw(&mut raw);
                (libc::tcsetattr(0, libc::TCSANOW, &raw) == 0).then_some(Self(before))
            }
        }
    }

    impl Drop for Raw {
        fn drop(&mut self) {
            // SAFETY: as in `enter`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &self.0);
            }
        }
    }
}

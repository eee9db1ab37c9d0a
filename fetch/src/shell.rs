//! A tenant's shell in its lease's container (ACC-01, ACC-02): the protocol both ends speak, and
//! the tenant's end of it.
//!
//! `GET /shell/<lease>` on the provider's node, upgraded to a WebSocket, with an EIP-712
//! [`crate::access::access`] for [`AccessTo::Shell`](crate::access::AccessTo::Shell) in the
//! [`crate::AUTH_HEADER`]: the node checks it (the lease's tenant, this lease, this provider, this
//! market, not expired, not replayed) before it upgrades, and refuses with a status and a reason
//! otherwise. Then:
//!
//! - the tenant's first message is a [`Start`] (text, JSON): the command (default [`DEFAULT_SHELL`])
//!   and whether it wants a terminal, and of which size;
//! - the tenant sends its input as binary messages, and [`Control`]s as text: a resize, or the
//!   end of its input;
//! - the node sends the command's output as binary messages, each its stream's byte ([`STDOUT`],
//!   [`STDERR`]; a terminal has only standard output) and the bytes, and pings every
//!   [`PING_EVERY`];
//! - the node's last message is an [`Ended`] (text, JSON): the command's exit status, or why the
//!   session could not go on. Then it closes the socket.
//!
//! The command runs in the container the node made for the lease, as that container's user
//! (`nobody`), with its limits, capabilities (none) and filesystem: nothing of the host or of
//! another lease (ACC-02). The session ends with the command, with the container (the lease's
//! end), or when either side closes; the access is checked once, when it opens.

use alloy::primitives::B256;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest, protocol::WebSocketConfig},
};

use crate::{AUTH_HEADER, FetchError, Fetcher, client::Connect, error::cut};

/// The command a [`Start`] without one runs.
pub const DEFAULT_SHELL: &str = "/bin/sh";
/// Most arguments a command may have.
pub const MAX_ARGS: usize = 64;
/// Most bytes the arguments may have together.
pub const MAX_COMMAND_BYTES: usize = 4096;
/// Largest message either side sends or accepts.
pub const MAX_FRAME: usize = 64 << 10;
/// How often the node pings an open session (it keeps an idle session's connection open).
pub const PING_EVERY: std::time::Duration = std::time::Duration::from_secs(20);
/// A node that sent nothing, not even a ping, for this long is gone.
pub const SILENT_FOR: std::time::Duration =
    std::time::Duration::from_secs(3 * PING_EVERY.as_secs());
/// The stream byte of standard output.
pub const STDOUT: u8 = 1;
/// The stream byte of standard error.
pub const STDERR: u8 = 2;

/// The tenant's first message: what to run, and how.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    /// The command and its arguments (none: [`DEFAULT_SHELL`]).
    #[serde(default)]
    pub cmd: Vec<String>,
    /// Whether it runs on a terminal (its output is then one stream).
    #[serde(default)]
    pub tty: bool,
    /// The terminal's columns (0: the engine's default).
    #[serde(default)]
    pub cols: u16,
    /// The terminal's rows (0: the engine's default).
    #[serde(default)]
    pub rows: u16,
    /// `TERM` for a terminal (letters, digits, `-`, `.` and `+`, at most 64).
    #[serde(default)]
    pub term: Option<String>,
}

impl Start {
    /// The command to run.
    pub fn command(&self) -> Vec<String> {
        if self.cmd.is_empty() {
            vec![DEFAULT_SHELL.to_owned()]
        } else {
            self.cmd.clone()
        }
    }

    /// Why the node refuses it, if it does: too many or too long arguments, a NUL byte, an odd
    /// `TERM`.
    pub fn check(&self) -> Result<(), String> {
        if self.cmd.len() > MAX_ARGS {
            return Err(format!(
                "the command has {} arguments; at most {MAX_ARGS}",
                self.cmd.len()
            ));
        }
        let bytes: usize = self.cmd.iter().map(String::len).sum();
        if bytes > MAX_COMMAND_BYTES {
            return Err(format!(
                "the command is {bytes} bytes long; at most {MAX_COMMAND_BYTES}"
            ));
        }
        if self.cmd.iter().any(|a| a.contains('\0')) {
            return Err("an argument holds a NUL byte".into());
        }
        if self.cmd.first().is_some_and(String::is_empty) {
            return Err("the command's name is empty".into());
        }
        if let Some(t) = &self.term
            && !is_term(t)
        {
            return Err(format!("TERM {:?} is not a terminal's name", cut(t)));
        }
        Ok(())
    }
}

/// Whether `t` may be a [`Start`]'s `TERM`: letters, digits, `-`, `.` and `+`, 1 to 64 of them.
pub fn is_term(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.+".contains(&b))
}

/// What the tenant says besides its input (text, JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// Its terminal's new size.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Its input ended: the command's standard input is closed.
    Eof,
}

/// The node's last message (text, JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// The command exited with this status.
    Exit(i64),
    /// The session could not start or go on, and why.
    Error(String),
}

/// A binary message of output: `stream`'s byte, then `data`.
pub fn output_frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(1 + data.len());
    f.push(stream);
    f.extend_from_slice(data);
    f
}

/// What the node sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Output of the command on `stream` ([`STDOUT`] or [`STDERR`]).
    Output {
        /// Which stream.
        stream: u8,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The session is over.
    Ended(Ended),
}

/// Why a shell could not be opened or went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The node's address is not one to connect to.
    #[error(transparent)]
    Address(#[from] FetchError),
    /// The node answered the request with a refusal.
    #[error("the node refused the shell ({status}): {reason}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The node's reason.
        reason: String,
    },
    /// The connection could not be made, or broke.
    #[error("{0}")]
    Connection(String),
    /// The node sent something this protocol does not have.
    #[error("the node broke the shell protocol: {0}")]
    Protocol(String),
}

/// The WebSocket URL of `lease`'s shell at the node `base` (`http(s)://host[:port][/prefix]`).
pub fn shell_url(base: &str, lease: B256) -> Result<url::Url, FetchError> {
    let base = base.trim().trim_end_matches('/');
    let bad = |why: &str| FetchError::BadUri {
        uri: cut(base),
        why: why.into(),
    };
    let mut u =
        url::Url::parse(&format!("{base}/shell/{lease}")).map_err(|e| bad(&e.to_string()))?;
    let scheme = match u.scheme() {
        "http" => "ws",
        "https" => "wss",
        _ => return Err(FetchError::Scheme { uri: cut(base) }),
    };
    u.set_scheme(scheme)
        .map_err(|()| bad("its scheme cannot be changed"))?;
    Ok(u)
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An open shell session.
#[derive(Debug)]
pub struct Session {
    ws: Socket,
}

/// The sending half of a [`Session`] ([`Session::split`]).
#[derive(Debug)]
pub struct SessionWriter {
    sink: futures_util::stream::SplitSink<Socket, Message>,
}

/// The receiving half of a [`Session`] ([`Session::split`]).
#[derive(Debug)]
pub struct SessionReader {
    stream: futures_util::stream::SplitStream<Socket>,
}

impl Fetcher {
    /// Open `lease`'s shell at the node `base` with the access `auth`, and start `start`. The
    /// node's address is held to this fetcher's rules (no internal address unless its allow-list
    /// names it), checked on the address connected to.
    pub async fn shell(
        &self,
        base: &str,
        lease: B256,
        auth: &str,
        start: &Start,
    ) -> Result<Session, ShellError> {
        let url = shell_url(base, lease)?;
        let host = url.host_str().ok_or_else(|| FetchError::BadUri {
            uri: cut(base),
            why: "it names no host".into(),
        })?;
        let port = url.port_or_known_default().unwrap_or(80);
        let stream = self.connect_tcp(host, port).await.map_err(|e| match e {
            Connect::Address(e) => ShellError::Address(e),
            Connect::Failed(e) => ShellError::Connection(e),
        })?;
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| ShellError::Protocol(e.to_string()))?;
        request.headers_mut().insert(
            AUTH_HEADER,
            auth.parse()
                .map_err(|_| ShellError::Protocol("the access is not a header value".into()))?,
        );
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME))
            .max_frame_size(Some(MAX_FRAME));
        let handshake =
            tokio_tungstenite::client_async_tls_with_config(request, stream, Some(config), None);
        let (ws, _) = match tokio::time::timeout(self.limits.connect, handshake).await {
            Ok(Ok(done)) => done,
            Ok(Err(tungstenite::Error::Http(resp))) => {
                let reason = resp
                    .body()
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "no reason given".into());
                return Err(ShellError::Refused {
                    status: resp.status().as_u16(),
                    reason: cut(&reason),
                });
            }
            Ok(Err(e)) => return Err(ShellError::Connection(format!("{url}: {e}"))),
            Err(_) => {
                return Err(ShellError::Connection(format!(
                    "{url}: no WebSocket handshake in {:?}",
                    self.limits.connect
                )));
            }
        };
        let mut s = Session { ws };
        let text = serde_json::to_string(start).map_err(|e| ShellError::Protocol(e.to_string()))?;
        s.send(Message::text(text)).await?;
        Ok(s)
    }
}

/// Send `m` on `sink`.
async fn send_on(
    sink: &mut (impl SinkExt<Message, Error = tungstenite::Error> + Unpin),
    m: Message,
) -> Result<(), ShellError> {
    sink.send(m)
        .await
        .map_err(|e| ShellError::Connection(format!("the session broke off: {e}")))
}

/// Send `data` as input on `sink`, in messages of at most [`MAX_FRAME`].
async fn input_on(
    sink: &mut (impl SinkExt<Message, Error = tungstenite::Error> + Unpin),
    data: &[u8],
) -> Result<(), ShellError> {
    for chunk in data.chunks(MAX_FRAME) {
        send_on(sink, Message::binary(chunk.to_vec())).await?;
    }
    Ok(())
}

/// Send `c` on `sink`.
async fn control_on(
    sink: &mut (impl SinkExt<Message, Error = tungstenite::Error> + Unpin),
    c: &Control,
) -> Result<(), ShellError> {
    let text = serde_json::to_string(c).map_err(|e| ShellError::Protocol(e.to_string()))?;
    send_on(sink, Message::text(text)).await
}

/// The next event on `stream`; a node silent for [`SILENT_FOR`] is gone.
async fn next_on(
    stream: &mut (impl StreamExt<Item = Result<Message, tungstenite::Error>> + Unpin),
) -> Option<Result<Event, ShellError>> {
    loop {
        let m = match tokio::time::timeout(SILENT_FOR, stream.next()).await {
            Err(_) => {
                return Some(Err(ShellError::Connection(format!(
                    "the node sent nothing for {} s: the connection is gone",
                    SILENT_FOR.as_secs()
                ))));
            }
            Ok(None) => return None,
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => {
                return Some(Err(ShellError::Connection(format!(
                    "the session broke off: {e}"
                ))));
            }
        };
        return Some(match m {
            Message::Binary(b) => match b.split_first() {
                Some((&stream, data)) if stream == STDOUT || stream == STDERR => {
                    Ok(Event::Output {
                        stream,
                        data: data.to_vec(),
                    })
                }
                _ => Err(ShellError::Protocol("output of no stream".into())),
            },
            Message::Text(t) => serde_json::from_str::<Ended>(&t)
                .map(Event::Ended)
                .map_err(|e| ShellError::Protocol(format!("{e}: {}", cut(&t)))),
            Message::Close(_) => Err(ShellError::Connection(
                "the node closed the session without an exit status".into(),
            )),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        });
    }
}

impl SessionWriter {
    /// Send `data` to the command's standard input.
    pub async fn input(&mut self, data: &[u8]) -> Result<(), ShellError> {
        input_on(&mut self.sink, data).await
    }

    /// Send `c`.
    pub async fn control(&mut self, c: &Control) -> Result<(), ShellError> {
        control_on(&mut self.sink, c).await
    }

    /// Close the session.
    pub async fn close(mut self) {
        let _ = self.sink.close().await;
    }
}

impl SessionReader {
    /// The node's next output, or the end; `None` once the session is over.
    pub async fn next(&mut self) -> Option<Result<Event, ShellError>> {
        next_on(&mut self.stream).await
    }
}

impl Session {
    async fn send(&mut self, m: Message) -> Result<(), ShellError> {
        send_on(&mut self.ws, m).await
    }

    /// Its halves, to send and receive at once (a command's input and output each in its own
    /// task: one blocked never stops the other).
    pub fn split(self) -> (SessionWriter, SessionReader) {
        let (sink, stream) = self.ws.split();
        (SessionWriter { sink }, SessionReader { stream })
    }

    /// Send `data` to the command's standard input. (While it is sent, nothing is read: a
    /// command that writes while it reads needs [`Session::split`].)
    pub async fn input(&mut self, data: &[u8]) -> Result<(), ShellError> {
        input_on(&mut self.ws, data).await
    }

    /// Send `c`.
    pub async fn control(&mut self, c: &Control) -> Result<(), ShellError> {
        control_on(&mut self.ws, c).await
    }

    /// The node's next output, or the end; `None` once the session is over.
    pub async fn next(&mut self) -> Option<Result<Event, ShellError>> {
        next_on(&mut self.ws).await
    }

    /// Close the session (the command's input ends; a shell then exits).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_is_checked_and_defaults_to_a_shell() {
        let s = Start::default();
        assert_eq!(s.command(), vec![DEFAULT_SHELL.to_owned()]);
        assert_eq!(s.check(), Ok(()));
        let too_many = Start {
            cmd: vec!["x".into(); MAX_ARGS + 1],
            ..Start::default()
        };
        assert!(too_many.check().is_err());
        let too_long = Start {
            cmd: vec!["x".repeat(MAX_COMMAND_BYTES + 1)],
            ..Start::default()
        };
        assert!(too_long.check().is_err());
        let nul = Start {
            cmd: vec!["sh".into(), "a\0b".into()],
            ..Start::default()
        };
        assert!(nul.check().is_err());
        let empty = Start {
            cmd: vec![String::new()],
            ..Start::default()
        };
        assert!(empty.check().is_err());
        for (term, ok) in [("xterm-256color", true), ("", false), ("x;rm", false)] {
            let s = Start {
                term: Some(term.into()),
                ..Start::default()
            };
            assert_eq!(s.check().is_ok(), ok, "{term}");
        }
    }

    #[test]
    fn messages_have_their_documented_form() {
        let c = serde_json::to_string(&Control::Resize { cols: 80, rows: 24 }).expect("json");
        assert_eq!(c, r#"{"resize":{"cols":80,"rows":24}}"#);
        assert_eq!(
            serde_json::to_string(&Control::Eof).expect("json"),
            r#""eof""#
        );
        assert_eq!(
            serde_json::to_string(&Ended::Exit(3)).expect("json"),
            r#"{"exit":3}"#
        );
        let s: Start = serde_json::from_str(r#"{"cmd":["ls","-l"],"tty":true}"#).expect("start");
        assert_eq!(s.cmd, ["ls", "-l"]);
        assert!(s.tty);
        assert_eq!(output_frame(STDERR, b"x"), [2, b'x']);
    }

    /// PIN-02: a node's address that is, or resolves to, an internal one is refused before any
    /// connection, as every fetch's is, unless the allow-list names its network.
    #[tokio::test]
    async fn a_shell_is_never_opened_to_an_internal_address() {
        let id = B256::repeat_byte(1);
        for base in [
            "http://127.0.0.1:9",
            "http://localhost:9",
            "http://[::ffff:10.0.0.1]:9",
        ] {
            let got = Fetcher::default()
                .shell(base, id, "x", &Start::default())
                .await;
            assert!(
                matches!(got, Err(ShellError::Address(FetchError::Internal { .. }))),
                "{base}: {got:?}"
            );
        }
        // Allowed (a devnet): the connection is tried, and nothing listens there.
        let got = Fetcher::devnet()
            .shell("http://127.0.0.1:9", id, "x", &Start::default())
            .await;
        assert!(matches!(got, Err(ShellError::Connection(_))), "{got:?}");
    }

    #[test]
    fn the_url_is_the_nodes_websocket_on_the_same_host() {
        let id = B256::repeat_byte(1);
        assert_eq!(
            shell_url("http://127.0.0.1:8080/", id)
                .expect("url")
                .as_str(),
            format!("ws://127.0.0.1:8080/shell/{id}")
        );
        assert_eq!(
            shell_url("https://node.example/gl", id)
                .expect("url")
                .as_str(),
            format!("wss://node.example/gl/shell/{id}")
        );
        assert!(matches!(
            shell_url("file:///etc", id),
            Err(FetchError::Scheme { .. })
        ));
    }
}

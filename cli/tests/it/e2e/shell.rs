//! `gridlease shell`: the tenant's session with the lease's node (ACC-01, ACC-02), against a node
//! speaking the shell protocol ([`gridlease_fetch::shell`]) that echoes its input.

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    extract::{
        State,
        ws::{Message, WebSocketUpgrade},
    },
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::get,
};
use gridlease_fetch::shell::{Control, Ended, STDERR, STDOUT, Start, output_frame};

use super::*;

/// What the fake node saw: the auth header and the start of each session.
type Seen = Arc<Mutex<Vec<(String, Start)>>>;

/// A node whose `/shell/<id>` echoes its input as output until the input ends, then writes
/// `bye` to standard error and exits 5; with `refuse`, it answers 409 instead.
async fn fake_shell_node(refuse: bool) -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/shell/{id}",
            get(
                move |State(seen): State<Seen>, headers: HeaderMap, ws: WebSocketUpgrade| async move {
                    if refuse {
                        return (StatusCode::CONFLICT, "the lease's job is posted, not running")
                            .into_response();
                    }
                    let auth = headers
                        .get("x-gridlease-auth")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    ws.on_upgrade(move |mut ws| async move {
                        let Some(Ok(Message::Text(t))) = ws.recv().await else {
                            return;
                        };
                        let start: Start = serde_json::from_str(&t).expect("a start");
                        seen.lock().expect("lock").push((auth, start));
                        while let Some(Ok(m)) = ws.recv().await {
                            match m {
                                Message::Binary(b) => {
                                    let echo = output_frame(STDOUT, &b);
                                    let _ = ws.send(Message::binary(echo)).await;
                                    // A terminal's ^D, as a shell takes it.
                                    if b.contains(&4) {
                                        break;
                                    }
                                }
                                Message::Text(t)
                                    if serde_json::from_str::<Control>(&t).ok()
                                        == Some(Control::Eof) =>
                                {
                                    break;
                                }
                                _ => {}
                            }
                        }
                        let _ = ws.send(Message::binary(output_frame(STDERR, b"bye\n"))).await;
                        let end = serde_json::to_string(&Ended::Exit(5)).expect("json");
                        let _ = ws.send(Message::text(end)).await;
                    })
                    .into_response()
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// `cmd` started with its three streams piped.
fn piped(cmd: &mut std::process::Command) -> std::process::Child {
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// The CLI opens the lease's shell with the tenant's access for this shell, lease, provider and
/// market, runs the command given after `--` without a terminal (its input is not one), passes
/// its input to the end, prints both streams where they belong, and exits with the command's
/// status; a node's refusal is said with its reason.
// Two workers: the fake node answers while the test waits for a CLI run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_runs_the_command_with_the_tenants_access_and_exits_with_its_status() {
    use gridlease_fetch::access::{AccessTo, grant};
    let n = net().await;
    let (owner, op) = n.provider().await;
    let id = n.order("shell.toml", true, Some(&op)).await;
    let (url, seen) = fake_shell_node(false).await;
    let mut child =
        piped(
            n.command(true)
                .args(["shell", &id.to_string(), "--node", &url, "--", "cat", "-n"]),
        );
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"hello\nworld\n").expect("input");
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("the CLI ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\nworld\n");
    assert_eq!(stderr, "bye\n");
    let (auth, start) = seen.lock().expect("lock").pop().expect("a session");
    assert_eq!(start.cmd, ["cat", "-n"]);
    assert!(!start.tty, "its input is not a terminal");
    let venue = gridlease_testkit::market::venue(n.d.address("Market").expect("market"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let g = grant(&auth, venue, AccessTo::Shell, id, owner, now).expect("a shell access");
    assert_eq!(g.signer, n.tenant);

    // Much input, echoed as it comes: the CLI reads the output while it sends the input, and
    // every byte comes back once. (Loopback's socket buffers may hold all of it, so this alone
    // does not show that neither waits on the other; the node's test does, on the real engine.)
    let big: Vec<u8> = (0..8usize << 20).map(|i| b"abcdefghij\n"[i % 11]).collect();
    let mut child =
        piped(
            n.command(true)
                .args(["shell", &id.to_string(), "--node", &url, "--", "cat"]),
        );
    let mut stdin = child.stdin.take().expect("stdin");
    let feeding = std::thread::spawn({
        let big = big.clone();
        move || std::io::Write::write_all(&mut stdin, &big)
    });
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("the CLI ends");
    feeding.join().expect("join").expect("fed");
    assert_eq!(out.status.code(), Some(5));
    assert!(
        out.stdout == big,
        "{} of {} bytes",
        out.stdout.len(),
        big.len()
    );
    seen.lock().expect("lock").clear();

    // On a terminal (`script` gives it one), without a command: the container's shell, on a
    // terminal named as this one, the keys passed on as typed (^D included).
    let cli = n.command(true);
    let line = std::iter::once(cli.get_program())
        .chain(cli.get_args())
        .chain(
            ["shell", &id.to_string(), "--node", &url]
                .map(std::ffi::OsStr::new)
                .iter()
                .copied(),
        )
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = piped(
        std::process::Command::new("script")
            .args(["-qefc", &line, "/dev/null"])
            .env("TERM", "xterm-256color"),
    );
    let mut stdin = child.stdin.take().expect("stdin");
    let sessions = || seen.lock().expect("lock").len();
    for _ in 0..100 {
        if sessions() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(sessions(), 1, "the session opened");
    {
        use std::io::Write;
        stdin.write_all(b"ls\r\x04").expect("keys");
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("the CLI ends");
    drop(stdin);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("ls") && text.contains("bye"), "{text}");
    let (_, start) = seen.lock().expect("lock").pop().expect("a session");
    assert!(start.tty, "a terminal");
    assert!(start.cmd.is_empty(), "the container's shell");
    assert_eq!(start.term.as_deref(), Some("xterm-256color"));

    // A refusal, with the node's reason.
    let (url, _) = fake_shell_node(true).await;
    let r = n.cli(&["shell", &id.to_string(), "--node", &url, "--", "true"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("(409): the lease's job is posted, not running"),
        "{}",
        r.stderr
    );
    // An order nobody leased has no shell: said before any request.
    let open = n.order("open.toml", false, None).await;
    let r = n.cli(&["shell", &open.to_string(), "--node", &url]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("never leased"), "{}", r.stderr);
}

/// POST `body` (JSON) to `path` of the console at `addr` as its own page would; the status line
/// and the body.
fn post_as_page(addr: &str, path: &str, body: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// The web console runs a command for the page (`POST /api/shell`): a session with the lease's
/// node opened with exactly the access the tenant signed on the page, `/bin/sh -c` and the
/// command line, no input, and the command's two streams and exit status handed back as JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_runs_a_command_through_the_nodes_shell_with_the_signed_access() {
    use gridlease_fetch::access::{AccessTo, access};
    let n = net().await;
    let (owner, op) = n.provider().await;
    let id = n.order("console-shell.toml", true, Some(&op)).await;
    let (url, seen) = fake_shell_node(false).await;
    // The node that serves the lease's result is the one the console asks.
    n.post(&op, id, b"x", &format!("{url}/results/{id}")).await;
    let dist = tempfile::tempdir().expect("tempdir");
    std::fs::write(dist.path().join("index.html"), "<!doctype html>").expect("write");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut console = n
        .command(false)
        .args(["console", "--listen", &addr, "--dir"])
        .arg(dist.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the console");
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let tenant: alloy::signers::local::PrivateKeySigner =
        gridlease_deploy::anvil::ANVIL_KEYS[1].parse().expect("key");
    let venue = gridlease_testkit::market::venue(n.d.address("Market").expect("market"));
    let auth = access(&tenant, venue, AccessTo::Shell, id, owner).expect("sign");
    let body =
        serde_json::json!({ "lease": id, "auth": auth, "command": "id -u; ls /" }).to_string();
    let (status, answer) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || post_as_page(&addr, "/api/shell", &body)
    })
    .await
    .expect("join");
    let _ = console.kill();
    let _ = console.wait();
    assert!(status.contains("200"), "{status}: {answer}");
    let v: serde_json::Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(v["stdout"], "", "{v}");
    assert_eq!(v["stderr"], "bye\n", "{v}");
    assert_eq!(v["exit"], 5, "{v}");
    let (sent, start) = seen.lock().expect("lock").pop().expect("a session");
    assert_eq!(sent, auth, "the tenant's own access, untouched");
    assert_eq!(start.cmd, ["/bin/sh", "-c", "id -u; ls /"]);
    assert!(!start.tty);
}

//! A static file server on loopback for devnets and tests: job inputs and results are named by
//! http(s) URLs (a provider, keeper or CLI never reads a URI from its own disk, SECURITY.md PIN-01),
//! so whatever a test or the demo wants a URI for is served from a directory here.
//!
//! `GET /<name>` answers the file `<dir>/<name>` when `name` is a plain file name (no `/`, no
//! `..`), read at request time (a test may rewrite it); anything else is a 404.

use std::path::{Path, PathBuf};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// A running file server; stops when dropped. It runs on a thread of its own, so a test that
/// blocks its own runtime (running the CLI as a child process) is still served.
#[derive(Debug)]
pub struct Files {
    base: String,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Files {
    /// Serve `dir` on 127.0.0.1 (a free port).
    pub fn serve(dir: &Path) -> std::io::Result<Self> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let base = format!("http://{}", std_listener.local_addr()?);
        let root = dir.to_owned();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("gridlease-files".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(std_listener) else {
                        return;
                    };
                    loop {
                        let (c, _) = tokio::select! {
                            _ = &mut stopped => return,
                            a = listener.accept() => match a {
                                Ok(a) => a,
                                Err(_) => return,
                            },
                        };
                        tokio::spawn(answer(c, root.clone()));
                    }
                });
            })?;
        Ok(Self {
            base,
            dir: dir.to_owned(),
            stop: Some(stop),
        })
    }

    /// The URL `name` is served at.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    /// Write `bytes` as `name` in the served directory and return its URL.
    pub fn put(&self, name: &str, bytes: &[u8]) -> std::io::Result<String> {
        std::fs::write(self.dir.join(name), bytes)?;
        Ok(self.url(name))
    }
}

/// Answer one request on `c` from `root`.
async fn answer(mut c: tokio::net::TcpStream, root: PathBuf) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
        match c.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let name = line
        .strip_prefix("GET /")
        .and_then(|r| r.split(' ').next())
        .filter(|n| !n.is_empty() && !n.contains('/') && !n.contains("..") && *n != ".");
    let body = match name {
        Some(n) => tokio::fs::read(root.join(n)).await.ok(),
        None => None,
    };
    let (status, body) = match body {
        Some(b) => ("200 OK", b),
        None => ("404 Not Found", b"no such file".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = c.write_all(head.as_bytes()).await;
    let _ = c.write_all(&body).await;
    let _ = c.shutdown().await;
}

impl Drop for Files {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use gridlease_fetch::Fetcher;

    use super::*;

    #[tokio::test]
    async fn serves_plain_names_from_its_directory_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = Files::serve(dir.path()).expect("serve");
        let url = files.put("a.bin", &[1, 2, 3]).expect("put");
        let f = Fetcher::devnet();
        assert_eq!(f.get(&url, None).await, Ok(vec![1, 2, 3]));
        files.put("a.bin", &[4]).expect("rewrite");
        assert_eq!(f.get(&url, None).await, Ok(vec![4]));
        for bad in ["missing", "..%2Fetc", "../etc/hostname"] {
            assert!(f.get(&files.url(bad), None).await.is_err(), "{bad}");
        }
    }
}

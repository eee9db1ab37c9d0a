//! A TCP echo service on loopback: what a service lease's tests put behind the node's TLS front
//! (ACC-03), so bytes sent through the front are seen to come back unchanged.

use tokio::net::TcpListener;

/// Start an echo service on a free loopback port (on the current runtime); returns the port.
/// Every connection gets back what it sends until it closes its side.
pub async fn echo() -> std::io::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let port = l.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = c.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    Ok(port)
}

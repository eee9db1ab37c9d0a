//! What stands in front of the node's HTTP API (SECURITY.md PIN-05): a bound on open connections
//! ([`MAX_CONNECTIONS`], [`LimitedListener`]: past it, new connections wait in the kernel's
//! backlog until one closes; [`MAX_PER_ADDRESS`] of them per client address; closed after
//! [`IDLE`] without a byte moving either way), a per-address rate limit (an IPv6 client counted
//! by its /64: [`client`]) (a token bucket per client IP:
//! [`RATE_BURST`] requests at once, refilled at [`RATE_PER_SEC`]; over it, `429` with
//! `retry-after`) and a bound on requests served at once ([`MAX_IN_FLIGHT`]; over it, `503` at
//! once rather than a queue that grows with the attack). Bodies are capped per route
//! (a pushed spec: [`crate::specs::MAX_PUSHED_SPEC`]), ids are parsed as 32-byte hex before they
//! name a file, and signed requests carry an expiry of at most an hour, past which they are
//! refused.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request, State, connect_info::Connected},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    serve::{IncomingStream, Listener},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};

/// Connections open at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections one address may hold open at once: past it, its new ones are closed at once, so
/// one address cannot take all [`MAX_CONNECTIONS`].
pub const MAX_PER_ADDRESS: usize = 32;
/// A connection that moves no byte either way for this long is closed: one that sends nothing,
/// or stops reading an answer, holds its slot no longer than this. A request must also be
/// answered (the node's first byte back) within this long of its first byte, so one that drips
/// its headers or body, a byte now and then, is closed too: the idle time alone never ends it.
pub const IDLE: Duration = Duration::from_secs(60);

/// Requests served at once; more are answered `503` at once.
pub const MAX_IN_FLIGHT: usize = 64;
/// Requests one address may send in a burst.
pub const RATE_BURST: f64 = 120.0;
/// Requests per second one address is granted after its burst.
pub const RATE_PER_SEC: f64 = 30.0;
/// Addresses tracked at once: past it, those idle for a minute are forgotten (a forgotten
/// address starts again with a full bucket, which is what it would have by then anyway).
const TRACKED: usize = 10_000;

/// The rate limiter and the in-flight bound, shared by all connections.
#[derive(Debug)]
pub struct Guard {
    in_flight: Arc<Semaphore>,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    burst: f64,
    per_sec: f64,
}

impl Default for Guard {
    fn default() -> Self {
        Self::new(MAX_IN_FLIGHT, RATE_BURST, RATE_PER_SEC)
    }
}

impl Guard {
    /// A guard serving `in_flight` requests at once, `burst` then `per_sec` per address.
    pub fn new(in_flight: usize, burst: f64, per_sec: f64) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(in_flight)),
            buckets: Mutex::new(HashMap::new()),
            burst,
            per_sec,
        }
    }

    /// Whether `ip` may send a request at `now` (taking one token if so).
    pub fn admit(&self, ip: IpAddr, now: Instant) -> bool {
        let ip = client(ip);
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        if buckets.len() >= TRACKED && !buckets.contains_key(&ip) {
            buckets.retain(|_, (_, seen)| now.duration_since(*seen).as_secs() < 60);
        }
        let (tokens, seen) = buckets.entry(ip).or_insert((self.burst, now));
        let refill = now.duration_since(*seen).as_secs_f64() * self.per_sec;
        *tokens = (*tokens + refill).min(self.burst);
        *seen = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The client an address counts as: an IPv4 address itself; an IPv6 address its /64, which one
/// host is usually given whole and could rotate through to get a fresh bucket (and a fresh share
/// of the connections) per address, filling the table; an IPv4-mapped one its IPv4 address.
pub fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// A TCP listener that holds one of [`MAX_CONNECTIONS`] slots per open connection (past it, new
/// connections wait in the backlog), at most [`MAX_PER_ADDRESS`] per client address, and closes a
/// connection idle for [`IDLE`]: an attacker opening connections and sending nothing, or a byte
/// now and then, ties up a bounded share of the sockets for a bounded time.
#[derive(Debug)]
pub struct LimitedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_address: usize,
    idle: Duration,
}

impl LimitedListener {
    /// `inner`, with at most `max` connections open at once ([`MAX_PER_ADDRESS`] per address,
    /// closed after [`IDLE`]).
    pub fn new(inner: TcpListener, max: usize) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(max)),
            per_address: Arc::default(),
            max_per_address: MAX_PER_ADDRESS,
            idle: IDLE,
        }
    }

    /// The same with `per_address` connections per address, closed after `idle`.
    pub fn with_limits(mut self, per_address: usize, idle: Duration) -> Self {
        self.max_per_address = per_address;
        self.idle = idle;
        self
    }
}

/// One of an address's connections, counted until dropped.
#[derive(Debug)]
struct AddressSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl AddressSlot {
    /// A slot for `ip`, unless it holds `max` already.
    fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<Self> {
        let ip = client(ip);
        let mut c = counts.lock().ok()?;
        let n = c.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Self {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut c) = self.counts.lock()
            && let Some(n) = c.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.ip);
            }
        }
    }
}

/// A connection and its slots, given back when the connection is dropped. Reads and writes fail
/// once no byte has moved either way for its idle time, or once a request has waited that long
/// for the first byte of its answer (hyper then closes it).
#[derive(Debug)]
pub struct Limited {
    io: TcpStream,
    _slot: OwnedSemaphorePermit,
    _address: AddressSlot,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Armed by a request's first byte, disarmed by the answer's: when it fires, the request
    /// came too slowly (or the answer never started).
    answer: Pin<Box<tokio::time::Sleep>>,
    asked: bool,
}

impl Limited {
    /// A byte moved (or the stream ended): idle from now.
    fn moved(&mut self) {
        let at = tokio::time::Instant::now() + self.idle;
        self.timer.as_mut().reset(at);
    }

    /// Waiting on the socket: an error once idle for too long, or once a request has waited too
    /// long for its answer.
    fn idle_for_too_long(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let timed_out =
            |why: &str| Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why)));
        if self.asked && self.answer.as_mut().poll(cx).is_ready() {
            return timed_out("request not complete in time");
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => timed_out("connection idle for too long"),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.moved();
                if !this.asked && buf.filled().len() > before {
                    // A request's first byte: its answer is due within the idle time.
                    this.asked = true;
                    let at = tokio::time::Instant::now() + this.idle;
                    this.answer.as_mut().reset(at);
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.idle_for_too_long(cx),
        }
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.moved();
                if matches!(r, Ok(n) if n > 0) {
                    this.asked = false;
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.idle_for_too_long(cx).map(|r| r.map(|()| 0)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl Listener for LimitedListener {
    type Io = Limited;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // Closed only if dropped, which it never is while the listener lives.
            let slot = match self.slots.clone().acquire_owned().await {
                Ok(s) => s,
                Err(_) => std::future::pending().await,
            };
            let (io, addr) = Listener::accept(&mut self.inner).await;
            // Past its share, an address's new connection is closed at once (dropped).
            let Some(address) =
                AddressSlot::take(&self.per_address, addr.ip(), self.max_per_address)
            else {
                continue;
            };
            let timer = Box::pin(tokio::time::sleep(self.idle));
            let io = Limited {
                io,
                _slot: slot,
                _address: address,
                idle: self.idle,
                timer,
                answer: Box::pin(tokio::time::sleep(self.idle)),
                asked: false,
            };
            return (io, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The peer of a connection accepted by a [`LimitedListener`] (`ConnectInfo<Peer>`).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, LimitedListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, LimitedListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// The middleware: rate-limit by the peer's address, then hold a slot while the request is
/// served. A request without a peer address (in-process tests) is only bounded in flight.
pub async fn guard(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.0.ip())
        .or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        });
    if let Some(ip) = peer
        && !g.admit(ip, Instant::now())
    {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "too many requests from this address: slow down\n",
        )
            .into_response();
    }
    let Ok(_slot) = g.in_flight.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "the node is serving as many requests as it takes: retry shortly\n",
        )
            .into_response();
    };
    next.run(req).await
}

/// Least time between two chain look-ups for pushed specs of orders the node has not seen.
pub const PUSH_LOOKUP_GAP: std::time::Duration = std::time::Duration::from_millis(250);

/// Bounds the chain look-ups (paged `eth_getLogs` from the deployment block) that pushes for
/// unknown orders cause: one at a time, at most one per [`PUSH_LOOKUP_GAP`]; the others are
/// answered 429 at once.
#[derive(Debug)]
pub struct LookupGate {
    gap: std::time::Duration,
    last: tokio::sync::Mutex<Option<std::time::Instant>>,
}

impl Default for LookupGate {
    fn default() -> Self {
        Self::new(PUSH_LOOKUP_GAP)
    }
}

impl LookupGate {
    /// A gate letting one look-up begin per `gap`.
    pub fn new(gap: std::time::Duration) -> Self {
        Self {
            gap,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// A turn to look up, held until the guard drops; `None` when one is running or the last
    /// began less than the gap ago.
    pub fn try_enter(&self) -> Option<tokio::sync::MutexGuard<'_, Option<std::time::Instant>>> {
        let mut last = self.last.try_lock().ok()?;
        if last.is_some_and(|t| t.elapsed() < self.gap) {
            return None;
        }
        *last = Some(std::time::Instant::now());
        Some(last)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn pin_05_each_address_gets_its_burst_then_its_rate() {
        let g = Guard::new(4, 10.0, 5.0);
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        let t0 = Instant::now();
        assert_eq!((0..10).filter(|_| g.admit(a, t0)).count(), 10, "the burst");
        assert!(!g.admit(a, t0), "then refused");
        assert!(g.admit(b, t0), "another address has its own bucket");
        // 5 per second: one more after 200 ms, five after a second, never more than the burst.
        assert!(g.admit(a, t0 + Duration::from_millis(200)));
        assert!(!g.admit(a, t0 + Duration::from_millis(200)));
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| g.admit(a, later)).count(), 10);
    }

    /// PIN-05: IPv6 addresses of one /64 (one host's, usually) share a bucket, so rotating through
    /// them gets no fresh burst; another /64 has its own, and an IPv4-mapped address is its IPv4.
    #[test]
    fn pin_05_an_ipv6_host_rotating_its_addresses_shares_one_bucket() {
        let g = Guard::new(4, 10.0, 5.0);
        let t0 = Instant::now();
        let ip = |s: &str| -> IpAddr { s.parse().expect("ip") };
        let admitted = (0..20)
            .filter(|i| g.admit(ip(&format!("2001:db8:1:2::{:x}", i + 1)), t0))
            .count();
        assert_eq!(admitted, 10, "one burst for the whole /64");
        assert!(g.admit(ip("2001:db8:1:3::1"), t0), "another /64: its own");
        assert!(g.admit(ip("10.0.0.9"), t0));
        assert_eq!(client(ip("::ffff:10.0.0.9")), ip("10.0.0.9"));
    }

    /// Serve a route `/` answering "ok" on `listener`; its address.
    fn serving(listener: LimitedListener) -> SocketAddr {
        use axum::{Router, routing::get};
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().route("/", get(|| async { "ok" }));
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<Peer>()).await
        });
        addr
    }

    /// `GET /` on a new connection to `addr`: the whole answer.
    async fn ask(addr: SocketAddr) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn pin_05_connections_past_the_bound_wait_until_one_closes() {
        let listener =
            LimitedListener::new(TcpListener::bind("127.0.0.1:0").await.expect("bind"), 2);
        let slots = listener.slots.clone();
        let addr = serving(listener);
        // Two idle connections take both slots.
        let idle1 = TcpStream::connect(addr).await.expect("connect");
        let idle2 = TcpStream::connect(addr).await.expect("connect");
        tokio::time::timeout(Duration::from_secs(10), async {
            while slots.available_permits() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("both idle connections hold a slot");
        // A third is not served while they stay open...
        assert!(
            tokio::time::timeout(Duration::from_millis(700), ask(addr))
                .await
                .is_err(),
            "served past the bound"
        );
        // ... and is as soon as one closes.
        drop(idle1);
        let answer = tokio::time::timeout(Duration::from_secs(10), ask(addr))
            .await
            .expect("served once a slot is free");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        drop(idle2);
    }

    /// PIN-05: one address holds at most its share of the connections (its next one is closed at
    /// once, the others stay), and a connection that moves no byte for the idle time is closed:
    /// neither idle sockets nor drips hold the node's connections for ever.
    #[tokio::test]
    async fn pin_05_an_address_gets_its_share_of_connections_and_idle_ones_are_closed() {
        use tokio::io::AsyncReadExt;
        let listener =
            LimitedListener::new(TcpListener::bind("127.0.0.1:0").await.expect("bind"), 8)
                .with_limits(2, Duration::from_secs(3));
        let addr = serving(listener);
        // Whether the server has closed `c` (an end of stream, or a reset) within `secs`.
        let closed_within = async |c: &mut TcpStream, secs: f64| {
            let mut b = [0u8; 16];
            matches!(
                tokio::time::timeout(Duration::from_secs_f64(secs), c.read(&mut b)).await,
                Ok(Ok(0) | Err(_))
            )
        };
        let mut first = TcpStream::connect(addr).await.expect("connect");
        let mut second = TcpStream::connect(addr).await.expect("connect");
        let mut third = TcpStream::connect(addr).await.expect("connect");
        assert!(
            closed_within(&mut third, 2.0).await,
            "past its share: closed"
        );
        assert!(
            !closed_within(&mut first, 0.2).await,
            "within its share: open"
        );
        // Idle (nothing sent): closed after the idle time.
        assert!(closed_within(&mut first, 10.0).await, "idle: closed");
        assert!(closed_within(&mut second, 10.0).await, "idle: closed");
        // A connection that asks is served.
        let answer = ask(addr).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // One that drips its request, a byte well inside the idle time each, is closed once the
        // request has waited the idle time for its answer (the drip alone never idles it out).
        use tokio::io::AsyncWriteExt;
        let mut drip = TcpStream::connect(addr).await.expect("connect");
        let started = tokio::time::Instant::now();
        let mut closed = false;
        for b in b"GET / HTTP/1.1\r\nx-slow: "
            .iter()
            .chain([b'a'; 200].iter())
        {
            if drip.write_all(&[*b]).await.is_err() || closed_within(&mut drip, 0.5).await {
                closed = true;
                break;
            }
        }
        assert!(
            closed,
            "a dripped request held its connection for {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn pin_05_a_flood_gets_429_and_more_than_the_in_flight_bound_gets_503() {
        use axum::{Router, routing::get};
        let g = Arc::new(Guard::new(2, 5.0, 0.001));
        let (tx, rx) = tokio::sync::watch::channel(false);
        // How many slow requests are being served.
        let (entered, mut serving) = tokio::sync::watch::channel(0u32);
        let app = Router::new()
            .route(
                "/slow",
                get(move || {
                    let mut rx = rx.clone();
                    entered.send_modify(|n| *n += 1);
                    async move {
                        let _ = rx.wait_for(|go| *go).await;
                        "done"
                    }
                }),
            )
            .route("/fast", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(g, guard));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        let http = alloy::transports::http::reqwest::Client::new();
        let status = async |path: &str| {
            http.get(format!("{base}{path}"))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        };
        // Two slow requests take both slots: a third is refused at once, not queued.
        let (s1, s2) = (
            tokio::spawn({
                let h = http.clone();
                let u = format!("{base}/slow");
                async move { h.get(u).send().await.map(|r| r.status().as_u16()) }
            }),
            tokio::spawn({
                let h = http.clone();
                let u = format!("{base}/slow");
                async move { h.get(u).send().await.map(|r| r.status().as_u16()) }
            }),
        );
        tokio::time::timeout(Duration::from_secs(10), serving.wait_for(|n| *n == 2))
            .await
            .expect("both slow requests are in")
            .expect("watch");
        assert_eq!(status("/fast").await, 503);
        tx.send(true).expect("release");
        assert_eq!(s1.await.expect("join").expect("sent"), 200);
        assert_eq!(s2.await.expect("join").expect("sent"), 200);
        // The burst of 5 is spent (2 slow, 1 refused, ...): this address is now limited.
        let mut codes = Vec::new();
        for _ in 0..4 {
            codes.push(status("/fast").await);
        }
        assert_eq!(codes.iter().filter(|c| **c == 200).count(), 2, "{codes:?}");
        assert_eq!(codes.last(), Some(&429), "{codes:?}");
    }
}

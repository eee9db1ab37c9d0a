//! `POST /specs/<order id>`: the spec of an order whose `specURI` is
//! [`gridlease_primitives::spec::PUSH_URI`], pushed by its tenant (signed:
//! [`gridlease_fetch::spec_auth_message`]) and kept only when its hash is the order's
//! `specHash` ([`crate::specs`] keeps it). A pushed spec for an order the node has not bid on yet
//! is evaluated at once.

use std::sync::Arc;

use alloy::primitives::{Address, B256};
use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use gridlease_bindings::{IMarket::OrderParams, Market};
use gridlease_fetch::{Venue, spec_auth_message};
use gridlease_primitives::{
    protocol::{JobViewExt, Status},
    spec::{PUSH_URI, RunSpec},
};
use tracing::{info, warn};

use crate::{
    api::auth::{Refusal, auth_signer, check_auth, deny, refuse},
    guard::LookupGate,
    shared::Shared,
    specs::{pushed_spec_path, store_spec},
};

/// An order a push is about: its tenant, its terms, and the order itself when the node has no
/// row for it yet (it is then evaluated for a bid once the spec is kept).
type PushOrder = (Address, OrderParams, Option<Market::OrderCreated>);

/// The order a push for `id` is about. The auth header is checked first (form, expiry,
/// signature: no chain read for a request nobody signed); then the order is the node's own
/// (`local`), else `lookup` finds it on chain, one at a time and rate-limited by `gate` (429
/// otherwise), since anyone can sign with some key.
async fn push_order(
    venue: Venue,
    id: B256,
    headers: &HeaderMap,
    local: Option<PushOrder>,
    gate: &LookupGate,
    lookup: impl AsyncFnOnce() -> Result<Market::OrderCreated, String>,
) -> Result<PushOrder, Refusal> {
    auth_signer(
        headers,
        |expiry| spec_auth_message(venue, id, expiry),
        "sign the push with the order's tenant key (`gridlease submit --push`, header x-gridlease-auth)",
    )?;
    if let Some(o) = local {
        return Ok(o);
    }
    let Some(_turn) = gate.try_enter() else {
        return Err(refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("order {id} is not known to this node yet; retry in a second"),
        ));
    };
    match lookup().await {
        Ok(o) => Ok((o.tenant, o.params.clone(), Some(o))),
        Err(e) => Err(refuse(
            StatusCode::NOT_FOUND,
            &format!("no order {id} found: {e}"),
        )),
    }
}

/// Check a pushed spec for order `id` (terms `t`, tenant `tenant`): the order takes pushes, the
/// tenant signed the request for this node's market (`venue`), and the body is a run spec whose
/// hash is the order's.
pub fn verify_push(
    venue: Venue,
    id: B256,
    headers: &HeaderMap,
    body: &[u8],
    tenant: Address,
    t: &OrderParams,
) -> Result<RunSpec, Refusal> {
    if t.specURI != PUSH_URI {
        return Err(refuse(
            StatusCode::CONFLICT,
            &format!(
                "order {id} names its spec at {}; only orders with specURI {PUSH_URI} take a pushed spec",
                t.specURI
            ),
        ));
    }
    check_auth(
        headers,
        venue,
        |expiry| spec_auth_message(venue, id, expiry),
        tenant,
        "sign the push with the order's tenant key (`gridlease submit --push`, header x-gridlease-auth)",
    )?;
    let spec: RunSpec = serde_json::from_slice(body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            &format!("the body is not a run spec (canonical JSON): {e}"),
        )
    })?;
    if spec.hash() != t.specHash {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!(
                "the spec hashes to {}, the order's specHash is {}",
                spec.hash(),
                t.specHash
            ),
        ));
    }
    // PIN-04: a data job names its input roots, or nothing of it is downloaded.
    spec.workload
        .check_roots()
        .map_err(|e| refuse(StatusCode::UNPROCESSABLE_ENTITY, &e))?;
    crate::specs::check_kind(&spec, t.jobKind)
        .map_err(|e| refuse(StatusCode::UNPROCESSABLE_ENTITY, &e))?;
    Ok(spec)
}

/// `POST /specs/<order id>`: keep the spec its tenant pushed, and evaluate the order when the
/// node has not seen it yet.
pub(crate) async fn push_spec(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<B256>() else {
        return deny(StatusCode::BAD_REQUEST, "expected /specs/0x<64 hex digits>");
    };
    // The order's terms: from the node's own row, else from the order the node saw waiting for
    // this push, else (signed requests only, rate-limited) from the order's log on chain.
    let known = s.store.lock().ok().and_then(|st| st.job(id).ok().flatten());
    let waiting = s
        .awaiting_push
        .lock()
        .ok()
        .and_then(|w| w.get(&id).cloned());
    let local = match (known, waiting) {
        (None, Some(o)) => Some((o.tenant, o.params.clone(), Some(o))),
        (Some(j), _) => match crate::shared::terms(&j) {
            Some(t) => Some((j.tenant, t, None)),
            None => {
                return deny(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "stored terms do not decode",
                );
            }
        },
        (None, None) => None,
    };
    let lookup = async || {
        // One call first: an id with no order on chain (anyone can sign a push for any id) costs
        // no scan of the logs from the deployment block.
        let v = s
            .lens()
            .getJob(id)
            .call()
            .await
            .map_err(|e| format!("reading order {id}: {e}"))?;
        if v.status() == Status::None {
            return Err(format!("no order {id} on chain"));
        }
        crate::bidding::order_log(&s, id)
            .await
            .map_err(|e| format!("{e:#}"))
    };
    let (tenant, terms, new_order) =
        match push_order(s.venue(), id, &headers, local, &s.push_lookups, lookup).await {
            Ok(o) => o,
            Err(r) => return r.into_response(),
        };
    let spec = match verify_push(s.venue(), id, &headers, &body, tenant, &terms) {
        Ok(spec) => spec,
        Err(r) => return r.into_response(),
    };
    let path = pushed_spec_path(&s.cfg.data_dir, id);
    if path.exists() {
        return (
            StatusCode::OK,
            format!("the spec of order {id} is already here\n"),
        )
            .into_response();
    }
    if let Err(e) = store_spec(&path, &spec.canonical_json()) {
        warn!(order = %id, error = %e, "cannot store a pushed spec");
        return deny(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot store the spec; retry",
        );
    }
    info!(order = %id, tenant = %tenant, "spec pushed by the tenant");
    // The order stays in `awaiting_push` until it has been evaluated (and has a row if the node
    // bids): a repeated push in between then finds it locally and is answered 200, instead of
    // costing a rate-limited chain look-up.
    let forget = move |s: &Shared| {
        if let Ok(mut w) = s.awaiting_push.lock() {
            w.remove(&id);
        }
    };
    match new_order {
        Some(o) if !s.stop.is_cancelled() => {
            let s2 = s.clone();
            s.tracker.spawn(async move {
                if let Err(e) = crate::bidding::order_pushed(&s2, o).await {
                    warn!(order = %id, error = %e, "evaluating a pushed order failed");
                }
                forget(&s2);
            });
        }
        _ => forget(&s),
    }
    (StatusCode::CREATED, format!("spec of order {id} stored\n")).into_response()
}

#[cfg(test)]
mod tests {
    use alloy::signers::{SignerSync, local::PrivateKeySigner};
    use gridlease_primitives::spec::{JobKind, Resources, Workload};

    use gridlease_fetch::{AUTH_HEADER, Fetcher};

    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    use crate::{specs::spec_for, unix_now};

    fn spec() -> RunSpec {
        RunSpec {
            version: 1,
            workload: Workload::Container {
                image: "ghcr.io/acme/train:v1".into(),
                command: vec!["python".into(), "train.py".into()],
                env: [("SECRET_DATASET".to_owned(), "s3://private".to_owned())].into(),
            },
            resources: Resources {
                gpu_class: 0,
                gpu_count: 1,
                vram_gib: 8,
                cpu_cores: 1,
                ram_gib: 1,
            },
        }
    }

    fn terms(uri: &str) -> OrderParams {
        OrderParams {
            specHash: spec().hash(),
            specURI: uri.into(),
            ..OrderParams::default()
        }
    }

    /// The market the node in these tests serves.
    const V: Venue = Venue {
        chain_id: 31_337,
        market: Address::repeat_byte(0x11),
    };

    fn auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTH_HEADER, value.parse().expect("header"));
        h
    }

    fn status(r: Result<RunSpec, Refusal>) -> StatusCode {
        match r {
            Ok(_) => StatusCode::OK,
            Err(r) => r.0,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// PIN-05: any `x-gridlease-auth` value a stranger sends is refused (never a panic, never
        /// a signer), unless it is a live signature of the message: then it recovers its signer.
        #[test]
        fn pin_05_arbitrary_auth_headers_are_refused_and_only_real_signatures_recover(
            expiry in proptest::prelude::any::<u64>(),
            junk in "[ -~]{0,160}",
            cut in 0usize..140,
        ) {
            let message = |e: u64| format!("gridlease result {} until {e}", B256::ZERO);
            let key = PrivateKeySigner::from_bytes(&B256::repeat_byte(7)).expect("key");
            for value in [junk.clone(), format!("{expiry}:{junk}"), format!(":{junk}")] {
                if let Ok(v) = value.parse() {
                    let mut h = HeaderMap::new();
                    h.insert(AUTH_HEADER, v);
                    proptest::prop_assert!(auth_signer(&h, message, "sign it").is_err(), "{value}");
                }
            }
            let live = unix_now() + 60;
            let sig = key.sign_message_sync(message(live).as_bytes()).expect("sign");
            let good = format!("{live}:{sig}");
            let recovered = auth_signer(&auth(&good), message, "sign it").ok();
            proptest::prop_assert_eq!(recovered, Some(key.address()));
            // A cut signature, or one past its expiry, is refused.
            let short = &good[..cut.min(good.len() - 1)];
            proptest::prop_assert!(auth_signer(&auth(short), message, "sign it").is_err());
            let old = expiry % unix_now().max(1);
            let sig = key.sign_message_sync(message(old).as_bytes()).expect("sign");
            let stale = auth(&format!("{old}:{sig}"));
            proptest::prop_assert!(auth_signer(&stale, message, "sign it").is_err());
        }
    }

    #[test]
    fn a_push_is_kept_only_from_the_tenant_for_the_order_s_hash() {
        let id = B256::repeat_byte(9);
        let tenant = PrivateKeySigner::random();
        let other = PrivateKeySigner::random();
        let body = spec().canonical_json();
        let good = auth(&gridlease_fetch::spec_auth(&tenant, V, id).expect("signs"));
        let t = terms(PUSH_URI);
        let got = verify_push(V, id, &good, &body, tenant.address(), &t).expect("accepted");
        assert_eq!(got, spec());
        // Signed by someone else, for another order, or not at all.
        let forged = auth(&gridlease_fetch::spec_auth(&other, V, id).expect("signs"));
        assert_eq!(
            status(verify_push(V, id, &forged, &body, tenant.address(), &t)),
            StatusCode::FORBIDDEN
        );
        let elsewhere =
            auth(&gridlease_fetch::spec_auth(&tenant, V, B256::repeat_byte(8)).expect("signs"));
        assert_eq!(
            status(verify_push(V, id, &elsewhere, &body, tenant.address(), &t)),
            StatusCode::FORBIDDEN
        );
        // Signed for the same order id at another market, or on another chain: a header seen by
        // one deployment's node is no good at another's.
        for venue in [
            Venue {
                market: Address::repeat_byte(0x12),
                ..V
            },
            Venue {
                chain_id: V.chain_id + 1,
                ..V
            },
        ] {
            let replayed = auth(&gridlease_fetch::spec_auth(&tenant, venue, id).expect("signs"));
            let (code, why) = verify_push(V, id, &replayed, &body, tenant.address(), &t)
                .expect_err("another market's signature");
            assert_eq!(code, StatusCode::FORBIDDEN);
            assert!(why.contains(&V.to_string()), "{why}");
        }
        // A result download's access is not a push signature (not even its form).
        let result_sig = auth(
            &gridlease_fetch::result_auth(&tenant, V, id, Address::repeat_byte(2)).expect("signs"),
        );
        assert_eq!(
            status(verify_push(V, id, &result_sig, &body, tenant.address(), &t)),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(verify_push(
                V,
                id,
                &HeaderMap::new(),
                &body,
                tenant.address(),
                &t
            )),
            StatusCode::UNAUTHORIZED
        );
        // Expired, or living too long.
        for expiry in [unix_now() - 1, unix_now() + 7_200] {
            let sig = tenant
                .sign_message_sync(spec_auth_message(V, id, expiry).as_bytes())
                .expect("signs");
            let h = auth(&format!("{expiry}:{sig}"));
            assert_eq!(
                status(verify_push(V, id, &h, &body, tenant.address(), &t)),
                StatusCode::UNAUTHORIZED
            );
        }
        // Not the spec the order committed to, not a spec, not an order that takes pushes.
        let mut changed = spec();
        changed.resources.ram_gib = 2;
        let changed = changed.canonical_json();
        assert_eq!(
            status(verify_push(V, id, &good, &changed, tenant.address(), &t)),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(verify_push(V, id, &good, b"{}", tenant.address(), &t)),
            StatusCode::BAD_REQUEST
        );
        let service = OrderParams {
            jobKind: JobKind::Service.code(),
            ..t.clone()
        };
        let (code, why) = verify_push(V, id, &good, &body, tenant.address(), &service)
            .expect_err("a container spec for a service order");
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(why.contains("container job"), "{why}");
        let public = terms("https://example.com/spec.json");
        assert_eq!(
            status(verify_push(V, id, &good, &body, tenant.address(), &public)),
            StatusCode::CONFLICT
        );
    }

    #[tokio::test]
    async fn a_push_for_an_unknown_order_reads_the_chain_only_when_signed_and_rate_limited() {
        use std::sync::atomic::AtomicUsize;
        let id = B256::repeat_byte(4);
        let anyone = PrivateKeySigner::random();
        let signed = auth(&gridlease_fetch::spec_auth(&anyone, V, id).expect("signs"));
        // A wide gap, so that the second push below falls inside it on any machine.
        let gate = LookupGate::new(std::time::Duration::from_secs(3));
        let lookups = AtomicUsize::new(0);
        let lookup = async || {
            lookups.fetch_add(1, Relaxed);
            Err::<Market::OrderCreated, _>("no such order".to_owned())
        };
        let code = |r: Result<PushOrder, Refusal>| r.map(|_| ()).map_err(|r| r.0);
        // Unsigned, malformed, expired, or signed for another order: refused before any read.
        let expired = {
            let at = unix_now() - 1;
            let sig = anyone
                .sign_message_sync(spec_auth_message(V, id, at).as_bytes())
                .expect("signs");
            auth(&format!("{at}:{sig}"))
        };
        for h in [HeaderMap::new(), auth("garbage"), expired] {
            let r = push_order(V, id, &h, None, &gate, lookup).await;
            assert_eq!(code(r), Err(StatusCode::UNAUTHORIZED));
        }
        assert_eq!(
            lookups.load(Relaxed),
            0,
            "no chain read for an unsigned push"
        );
        // Signed (by any key): one look-up, then 429 until the gap has passed.
        let r = push_order(V, id, &signed, None, &gate, lookup).await;
        assert_eq!(code(r), Err(StatusCode::NOT_FOUND));
        assert_eq!(lookups.load(Relaxed), 1);
        let r = push_order(V, id, &signed, None, &gate, lookup).await;
        assert_eq!(code(r), Err(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(lookups.load(Relaxed), 1);
        // One at a time: while a look-up runs, another is refused.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let turn = loop {
            if let Some(t) = gate.try_enter() {
                break t;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the gate never reopened"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let r = push_order(V, id, &signed, None, &gate, lookup).await;
        assert_eq!(code(r), Err(StatusCode::TOO_MANY_REQUESTS));
        drop(turn);
        assert_eq!(lookups.load(Relaxed), 1);
        // An order the node knows needs no look-up and no turn.
        let local = Some((anyone.address(), terms(PUSH_URI), None));
        let r = push_order(V, id, &signed, local, &gate, lookup).await;
        assert_eq!(code(r), Ok(()));
        assert_eq!(lookups.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn a_push_order_waits_for_its_spec_and_a_tampered_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = B256::repeat_byte(3);
        let e = spec_for(&Fetcher::default(), dir.path(), id, &terms(PUSH_URI))
            .await
            .expect_err("not pushed yet");
        assert!(e.contains("waiting for the tenant"), "{e}");
        let path = pushed_spec_path(dir.path(), id);
        store_spec(&path, &spec().canonical_json()).expect("stored");
        assert_eq!(
            spec_for(&Fetcher::default(), dir.path(), id, &terms(PUSH_URI))
                .await
                .expect("read"),
            spec()
        );
        let mut other = spec();
        other.version = 2;
        store_spec(&path, &other.canonical_json()).expect("stored");
        assert!(
            spec_for(&Fetcher::default(), dir.path(), id, &terms(PUSH_URI))
                .await
                .is_err()
        );
        // Other URIs are fetched as before; the push URI is never fetched.
        let data = spec().data_uri();
        assert_eq!(
            spec_for(&Fetcher::default(), dir.path(), id, &terms(&data))
                .await
                .expect("data uri"),
            spec()
        );
        assert!(
            Fetcher::default()
                .spec(PUSH_URI, spec().hash())
                .await
                .is_err()
        );
        // A spec under an order of another kind is not run: the chain would treat the lease as
        // the order's kind (a service spec under a batch order never posts, and is slashed).
        store_spec(&path, &spec().canonical_json()).expect("stored");
        for uri in [PUSH_URI.to_owned(), data] {
            let service = OrderParams {
                jobKind: JobKind::Service.code(),
                ..terms(&uri)
            };
            let e = spec_for(&Fetcher::default(), dir.path(), id, &service)
                .await
                .expect_err("a container spec under a service order");
            assert!(e.contains("jobKind is 2"), "{e}");
        }
    }
}

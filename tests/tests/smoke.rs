//! Temporary: lifecycle gas probe.
use gridlease_tests::fixture::*;
use gridlease_bindings::Market;

#[test]
fn probe() {
    let mut s = Suite::new();
    s.register(0, 10_000 * USDC);
    for round in 0..2 {
        let mut p = s.order(10 * USDC, PRICE * 2);
        p.salt = alloy::primitives::B256::with_last_byte(round);
        let c = s.create_with_permit(0, p).expect_success();
        let id = s.last_order_id;
        let b = s.bid(0, id, PRICE).expect_success();
        s.chain.warp(601);
        let k = s.keeper.address;
        let a = s.award(k, id, vec![]).expect_success();
        s.chain.warp(1800);
        let t = s.tenant(0);
        let cl = s.close(t, id).expect_success();
        let owner = s.provider(0);
        let (tok, m) = (s.token, s.market);
        let w = s.chain.send(owner, m, Market::withdrawCall { token: tok, to: owner }).expect_success();
        println!("round {round}: create {} bid {} award {} close {} withdraw {} total {}", c.gas_used, b.gas_used, a.gas_used, cl.gas_used, w.gas_used, c.gas_used+b.gas_used+a.gas_used+cl.gas_used+w.gas_used);
    }
}

#[test]
fn probe_signed() {
    let mut s = Suite::new();
    s.register(0, 10_000 * USDC);
    for round in 0..2 {
        let mut p = s.order(10 * USDC, PRICE * 2);
        p.salt = alloy::primitives::B256::with_last_byte(round);
        let c = s.create_with_permit(0, p).expect_success();
        let id = s.last_order_id;
        s.chain.warp(601);
        let k = s.keeper.address;
        let sb = s.signed_bid(0, id, PRICE);
        let a = s.award(k, id, vec![sb]).expect_success();
        s.chain.warp(1800);
        let t = s.tenant(0);
        let cl = s.close(t, id).expect_success();
        let owner = s.provider(0);
        let (tok, m) = (s.token, s.market);
        let w = s.chain.send(owner, m, Market::withdrawCall { token: tok, to: owner }).expect_success();
        println!("signed round {round}: create {} award {} close {} withdraw {} total {}", c.gas_used, a.gas_used, cl.gas_used, w.gas_used, c.gas_used+a.gas_used+cl.gas_used+w.gas_used);
    }
}

#[test]
fn probe_batch() {
    let mut s = Suite::new();
    s.register(0, 1_000_000 * USDC);
    let mut ids = vec![];
    let k = s.keeper.address;
    for round in 0..100u64 {
        let mut p = s.order(10 * USDC, PRICE * 2);
        p.salt = alloy::primitives::B256::from(alloy::primitives::U256::from(round));
        p.instant = true;
        let id = s.create(0, p);
        s.bid(0, id, PRICE).expect_success();
        ids.push(id);
    }
    s.chain.warp(100);
    let r = s.settle(k, ids.clone()).expect_success();
    s.chain.warp(100);
    let r2 = s.settle(k, ids.clone()).expect_success();
    println!("batch100 first {} per {} ; second {} per {}", r.gas_used, r.gas_used/100, r2.gas_used, r2.gas_used/100);
}

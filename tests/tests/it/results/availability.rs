//! Data availability: challenges, answers and their bonds.

use super::*;

#[test]
fn an_answered_challenge_pays_the_bond_to_whoever_revealed_the_chunk_mec04() {
    let data = data5();
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let (_, c) = s.post(0, id, &data);
    let (k, op) = (s.keeper.address, s.operator(0));
    let before = s.chain.eth_balance(op);
    let ev = s
        .challenge(k, id, c, 3)
        .expect_success()
        .event::<Results::ChunkChallenged>();
    assert_eq!(ev.deadline.to::<u64>(), s.chain.now() + RESPONSE_WINDOW);
    assert!(s.job(id).challenged);
    // The same chunk cannot be challenged twice at once; a chunk past the end not at all.
    assert_revert!(s.challenge(k, id, c, 3), ResultsErrors::ChallengeOpen);
    assert_revert!(s.challenge(k, id, c, 5), ResultsErrors::ChunkOutOfRange);
    // A wrong chunk is refused.
    let mut wrong = data.clone();
    wrong[3 * RESULT_LEAF_BYTES] ^= 1;
    assert!(!s.answer(op, id, &wrong, 3).success);
    let r = s.answer(op, id, &data, 3).expect_success();
    assert_eq!(
        r.event::<Results::ChunkRevealed>().chunk.to_vec(),
        result_chunk(&data, 3).to_vec()
    );
    assert_eq!(s.chain.eth_balance(op) - before, U256::from(CHALLENGE_BOND));
    assert!(!s.job(id).challenged);
    // The result completes as usual.
    s.chain.warp(CHALLENGE_WINDOW + 1);
    assert_eq!(closed(&s.close(k, id).expect_success()).reason, 5);
}

#[test]
fn an_unanswered_challenge_fails_the_result_and_refunds_the_bond_mec04() {
    let data = data5();
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    s.chain.warp(100);
    let (_, c) = s.post(0, id, &data);
    let k = s.keeper.address;
    let before = s.chain.eth_balance(k);
    s.challenge(k, id, c, 0).expect_success();
    let prove = |s: &mut Suite| {
        send_results(
            s,
            k,
            Results::proveUnavailableCall {
                leaseId: id,
                index: U256::ZERO,
            },
        )
    };
    assert_revert!(prove(&mut s), ResultsErrors::ResponseWindowOpen);
    s.chain.warp(RESPONSE_WINDOW + 1);
    // Too late to answer now (MEC-10 style: the same timestamp decides both).
    let op = s.operator(0);
    assert_revert!(
        s.answer(op, id, &data, 0),
        ResultsErrors::ResponseWindowOver
    );
    let r = prove(&mut s).expect_success();
    let fault = r.event::<Market::LeaseFaulted>();
    assert_eq!(fault.kind, B256::right_padding_from(b"unavailable"));
    assert_eq!(fault.refund.to::<u128>(), 10 * USDC);
    assert_eq!(s.chain.eth_balance(k), before);
    assert_eq!(s.credit(s.provider(0)), 0);
}

#[test]
fn an_open_challenge_blocks_completion_until_resolved_and_extends_the_hold_by_at_most_one_window() {
    let data = data5();
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let (_, c) = s.post(0, id, &data);
    let k = s.keeper.address;
    s.chain.warp(CHALLENGE_WINDOW - 10);
    s.challenge(k, id, c, 1).expect_success();
    s.chain.warp(11);
    // The window is over: no new challenge, and the open one blocks completion.
    assert_revert!(s.challenge(k, id, c, 2), ResultsErrors::ChallengeWindowOver);
    assert_revert!(s.close(k, id), MarketErrors::LeaseChallenged);
    let op = s.operator(0);
    s.answer(op, id, &data, 1).expect_success();
    assert_eq!(closed(&s.close(k, id).expect_success()).reason, 5);
}

#[test]
fn container_outputs_get_the_same_challenge_mec13() {
    // An instant lease is a container job (jobKind 0): its output is challenged like a product.
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let out = b"stdout of the tenant's container\n".repeat(100);
    let (_, c) = s.post(0, id, &out);
    let k = s.keeper.address;
    s.challenge(k, id, c, 2).expect_success();
    s.chain.warp(RESPONSE_WINDOW + 1);
    send_results(
        &mut s,
        k,
        Results::proveUnavailableCall {
            leaseId: id,
            index: U256::from(2),
        },
    )
    .expect_success();
    assert_eq!(s.job(id).status, 5, "Faulted");
}

#[test]
fn a_challenge_needs_the_exact_bond_and_a_posted_result() {
    let data = data5();
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let c = Commitment::of(&data);
    let k = s.keeper.address;
    assert_revert!(s.challenge(k, id, c, 0), ResultsErrors::NoResult);
    s.post(0, id, &data).0.expect_success();
    let results = s.results;
    let call = Results::challengeCall {
        leaseId: id,
        root: c.root,
        size: c.size,
        index: U256::ZERO,
    };
    assert_revert!(
        s.chain.send_value(k, results, call, CHALLENGE_BOND - 1),
        ResultsErrors::BadBond
    );
}

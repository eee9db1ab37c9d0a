//! Malformed result trees, proven in one transaction.

use super::*;

/// A result of five full leaves whose tree the provider built with `leaves` (5 real ones, then
/// whatever padding it chose), posted with size 5 KiB.
fn post_tree(s: &mut Suite, id: B256, leaves: Vec<B256>) -> (Commitment, MerkleTree) {
    let t = MerkleTree::from_leaf_hashes(leaves);
    let c = Commitment {
        root: t.root(),
        size: 5 * RESULT_LEAF_BYTES as u64,
    };
    s.post_commitment(0, id, c).expect_success();
    (c, t)
}

fn malformed(
    s: &mut Suite,
    id: B256,
    c: Commitment,
    level: u64,
    index: u64,
    data: Vec<u8>,
    proof: Vec<B256>,
) -> Receipt {
    let keeper = s.keeper.address;
    send_results(
        s,
        keeper,
        Results::proveMalformedCall {
            leaseId: id,
            root: c.root,
            size: c.size,
            level: U256::from(level),
            index: U256::from(index),
            data: data.into(),
            proof,
        },
    )
}

#[test]
fn a_non_zero_padding_leaf_or_subtree_is_malformed_mec03() {
    let data = data5();
    let real: Vec<B256> = (0..5).map(|i| leaf_hash(result_chunk(&data, i))).collect();
    // A garbage padding leaf.
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let mut leaves = real.clone();
    leaves.extend([B256::ZERO, B256::repeat_byte(0xee), B256::ZERO]);
    let (c, t) = post_tree(&mut s, id, leaves);
    // Positions that are fine say so.
    assert_revert!(
        malformed(&mut s, id, c, 0, 5, B256::ZERO.to_vec(), t.proof(5)),
        ResultsErrors::NotMalformed
    );
    assert_revert!(
        malformed(
            &mut s,
            id,
            c,
            0,
            2,
            result_chunk(&data, 2).to_vec(),
            t.proof(2)
        ),
        ResultsErrors::NotMalformed
    );
    let r = malformed(
        &mut s,
        id,
        c,
        0,
        6,
        B256::repeat_byte(0xee).to_vec(),
        t.proof(6),
    )
    .expect_success();
    assert_eq!(
        r.event::<Market::LeaseFaulted>().kind,
        B256::right_padding_from(b"malformed-result")
    );

    // A level-1 padding node that is not the zero subtree (leaves 6 and 7).
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let mut leaves = real.clone();
    leaves.extend([B256::ZERO, B256::repeat_byte(1), B256::repeat_byte(2)]);
    let (c, t) = post_tree(&mut s, id, leaves);
    assert_ne!(t.node(1, 3), zero_hash(1));
    // Level 1, node 2 covers leaves 4 (real) and 5: not wholly padding.
    assert_revert!(
        malformed(&mut s, id, c, 1, 2, t.node(1, 2).to_vec(), t.proof_at(1, 2)),
        ResultsErrors::NotMalformed
    );
    malformed(&mut s, id, c, 1, 3, t.node(1, 3).to_vec(), t.proof_at(1, 3)).expect_success();
}

#[test]
fn a_real_leaf_of_the_wrong_length_is_malformed_mec03() {
    // The provider hashed its last leaf over 1,000 bytes while claiming 5 KiB.
    let data = data5();
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let mut leaves: Vec<B256> = (0..4).map(|i| leaf_hash(result_chunk(&data, i))).collect();
    let short = result_chunk(&data, 4)[..1_000].to_vec();
    leaves.push(leaf_hash(&short));
    let (c, t) = post_tree(&mut s, id, leaves);
    malformed(&mut s, id, c, 0, 4, short, t.proof(4)).expect_success();
}

#[test]
fn a_well_formed_result_cannot_be_proven_malformed() {
    let data = data5();
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let (_, c) = s.post(0, id, &data);
    let t = MerkleTree::result(&data);
    for (level, index) in [(0u64, 5u64), (0, 7), (1, 3), (2, 1)] {
        let node = t.node(level as usize, index);
        let r = malformed(
            &mut s,
            id,
            c,
            level,
            index,
            node.to_vec(),
            t.proof_at(level as usize, index),
        );
        assert_revert!(r, ResultsErrors::NotMalformed);
    }
}

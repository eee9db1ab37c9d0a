//! Jobs with data inputs: fraud proven with a row and a column.

use super::*;

/// Tenant 0 orders a data `matmul_i8` job (A 6 x 40, B 40 x 5 given as bytes), provider 0 wins it.
fn data_lease(s: &mut Suite) -> (B256, OrderParams, MatmulData, Vec<i32>) {
    let (m, k, n) = (6u32, 40u32, 5u32);
    let a: Vec<u8> = (0..m * k).map(|x| (x * 31 + 7) as u8).collect();
    let b: Vec<u8> = (0..k * n).map(|x| (x * 17 + 200) as u8).collect();
    let d = MatmulData::from_row_major(m, k, n, a, &b).expect("shape");
    let mut params = s.fresh_order(10 * USDC, PRICE * 2);
    (params.specHash, params.jobKind) = (d.spec_hash(), 1);
    params.collateral = U96::from(COLLATERAL);
    let id = s.lease_with(0, 0, params.clone());
    let c = multiply(&d.a, &d.bt, m as usize, k as usize, n as usize, 1);
    (id, params, d, c)
}

#[test]
fn data_inputs_fraud_is_proven_with_a_row_and_a_column_stk15() {
    let mut s = Suite::new();
    let (id, params, d, c) = data_lease(&mut s);
    let mut bad = c.clone();
    bad[4 * 5 + 1] -= 3;
    let (_, posted) = s.post(0, id, &encode(&bad));
    let f = localize(&d, &bad, B256::repeat_byte(9)).expect("found");
    assert_eq!((f.i, f.j), (4, 1));
    let (tenant, keeper) = (s.tenant(0), s.keeper.address);

    // A tampered row does not verify against A's root.
    let mut call = data_fraud_call(id, tenant, params.clone(), &d, posted, &f);
    let mut row = call.ops.aRow.to_vec();
    row[0] ^= 1;
    call.ops.aRow = row.into();
    assert_revert!(
        send_results(&mut s, keeper, call),
        ResultsErrors::NotInResult
    );
    // Roots other than the tenant's spec are refused.
    let mut call = data_fraud_call(id, tenant, params.clone(), &d, posted, &f);
    call.job.bRoot = B256::repeat_byte(1);
    assert_revert!(
        send_results(&mut s, keeper, call),
        ResultsErrors::NotThisMatmulJob
    );

    let r = send_results(
        &mut s,
        keeper,
        data_fraud_call(id, tenant, params, &d, posted, &f),
    )
    .expect_success();
    let e = r.event::<Results::MatmulFraudProven>();
    assert_eq!(
        (e.claimed.as_i64(), e.correct.as_i64()),
        (i64::from(bad[21]), i64::from(c[21]))
    );
    assert_eq!(closed(&r).reason, 4, "Faulted");
}

#[test]
fn data_inputs_proof_against_a_correct_result_reverts_stk13() {
    let mut s = Suite::new();
    let (id, params, d, c) = data_lease(&mut s);
    let (_, posted) = s.post(0, id, &encode(&c));
    let (tenant, keeper) = (s.tenant(0), s.keeper.address);
    let f = proof_for(&d, &c, 5, 4);
    let r = send_results(
        &mut s,
        keeper,
        data_fraud_call(id, tenant, params, &d, posted, &f),
    );
    assert_revert!(r, ResultsErrors::NoFraud);
}

//! `stake` and `stakeWithPermit`.

use super::*;

#[test]
fn stake_succeeds_emits_staked_and_moves_exact_amount() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let (owner, staking) = (b.owner(0), b.staking);
    let before = b.balance(owner);
    let e = ev::<Staking::Staked>(b.stake(0, usd(1_000)));
    assert_eq!((e.provider, e.amount), (owner, u(usd(1_000))));
    assert_eq!(e.newStake, u(usd(1_000)));
    let e = ev::<Staking::Staked>(b.stake(0, usd(500)));
    assert_eq!((e.amount, e.newStake), (u(usd(500)), u(usd(1_500))));
    assert_eq!(b.balance(owner), before - usd(1_500));
    assert_eq!(b.balance(staking), usd(1_500));
    assert_eq!((b.state(0).0, b.totals().0), (usd(1_500), usd(1_500)));
    b.assert_conserved();
}

#[test]
fn stake_reverts_zero_amount() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    reverts!(b.stake(0, 0), ZeroAmount());
}

#[test]
fn stake_reverts_not_registered() {
    let mut b = Bed::new();
    let provider = b.owner(0);
    reverts!(b.stake(0, USDC), ProviderNotRegistered(provider));
}

#[test]
fn stake_reverts_token_transfer_mismatch_fee_on_transfer_token_tok04() {
    let mut s = Suite::new();
    let gov = s.gov.address;
    let token = s.chain.deploy(gov, FeeOnTransferToken::BYTECODE.clone());
    let mut b = Bed::with_token(s, token);
    let (owner, staking) = (b.owner(0), b.staking);
    b.s.mint(token, owner, usd(1_000));
    b.register(0).expect_success();
    let (expected, received) = (u(usd(1_000)), u(usd(990)));
    let r = b.stake(0, usd(1_000));
    reverts!(r, TokenTransferMismatch(token, expected, received));
    assert_eq!((b.balance(owner), b.balance(staking)), (usd(1_000), 0));
    assert_eq!(b.state(0), (0, 0, 0));
}

#[test]
fn stake_reverts_amount_above_uint96_tok10_stk08() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let owner = b.owner(0);
    let amount = u((1u128 << 96) - 1) + u(1u8);
    let r = b.send(owner, Staking::stakeCall { amount });
    reverts!(r, StakeAmountTooLarge(amount));
}

#[test]
fn stake_with_permit_succeeds_valid_permit() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let (owner, spender, token) = (b.owner(0), b.staking, b.token);
    let p = b.permit(0, usd(700));
    let e = ev::<Staking::Staked>(b.stake_permit(owner, usd(700), p));
    assert_eq!(e.newStake, u(usd(700)));
    let call = MockStablecoin::allowanceCall { owner, spender };
    assert_eq!(b.s.chain.view(token, call), U256::ZERO);
    b.assert_conserved();
}

#[test]
fn stake_with_permit_succeeds_permit_front_run_esc02() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let (owner, spender, token) = (b.owner(0), b.staking, b.token);
    let (value, attacker) = (u(usd(700)), b.s.keeper.address);
    let (v, r, s, deadline) = b.permit(0, usd(700));
    // The attacker copies the permit from the mempool and lands it first.
    let call = MockStablecoin::permitCall::new((owner, spender, value, deadline, v, r, s));
    b.s.chain.send(attacker, token, call).expect_success();
    let p = (v, r, s, deadline);
    b.stake_permit(owner, usd(700), p).expect_success();
    assert_eq!(b.state(0).0, usd(700));
    b.assert_conserved();
}

#[test]
fn stake_with_permit_reverts_invalid_permit_without_allowance_esc02() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let (owner, token) = (b.owner(0), b.token);
    let bogus = (27, B256::ZERO, B256::ZERO, u(b.s.chain.now() + 60));
    let r = b.stake_permit(owner, USDC, bogus);
    let (allowance, needed) = (U256::ZERO, u(USDC));
    reverts!(r, InsufficientAllowance(token, owner, allowance, needed));
}

#[test]
fn stake_with_permit_reverts_permit_of_another_owner_esc03() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    b.register(1).expect_success();
    let (victim, owner, token) = (b.owner(0), b.owner(1), b.token);
    let p = b.permit(0, usd(700));
    let before = b.balance(victim);
    let r = b.stake_permit(owner, usd(700), p);
    let (allowance, needed) = (U256::ZERO, u(usd(700)));
    reverts!(r, InsufficientAllowance(token, owner, allowance, needed));
    assert_eq!((b.balance(victim), b.state(1).0), (before, 0));
}

//! `register` and `updateProvider`, and the collateral ceiling the operator consents to.

use super::*;

// ==================================================================== register / updateProvider

#[test]
fn register_succeeds_records_operator_capacity_and_ceiling() {
    let mut b = Bed::new();
    let (owner, op) = (b.owner(0), b.op(0));
    let e = ev::<Staking::ProviderRegistered>(b.register(0));
    assert_eq!((e.provider, e.operator), (owner, op));
    assert_eq!((e.capacity, e.metadataURI.as_str()), (big_capacity(), "p0"));
    assert_eq!(e.ceiling, U96::MAX);
    let info = b.info(0);
    assert_eq!((info.operator, info.stake), (op, U96::ZERO));
    assert_eq!(info.capacity, big_capacity());
    assert_eq!(b.provider_of(op), owner);
    let bidder = b.view(Staking::bidderInfoCall { operator: op });
    assert_eq!(bidder.provider, owner);
    // The consent is spent: its nonce moved on.
    assert_eq!(
        b.view(Staking::operatorNonceCall { operator: op }),
        U256::from(1)
    );
}

#[test]
fn register_without_the_operators_consent_reverts_mec11() {
    // Nobody binds a key it does not hold: a consent signed by another key, for another
    // provider, expired, or already used, is refused.
    let mut b = Bed::new();
    let (victim, squatter) = (b.operator_account(0), b.operator_account(1));
    let owner1 = b.owner(1);
    // Signed by the squatter's own key for the victim's address.
    let now = b.s.chain.now();
    let (deadline, sig) = b.consent_with(owner1, &squatter, U256::ZERO, now + 60);
    let r = b.register_signed(1, victim.address, U96::MAX, deadline, sig);
    reverts!(r, BadOperatorConsent(victim.address));
    // The victim's consent to serve provider 0, replayed by provider 1.
    let owner0 = b.owner(0);
    let (deadline, sig) = b.consent_with(owner0, &victim, U256::ZERO, now + 60);
    let r = b.register_signed(1, victim.address, U96::MAX, deadline, sig.clone());
    reverts!(r, BadOperatorConsent(victim.address));
    // Expired.
    b.s.chain.warp(61);
    let r = b.register_signed(0, victim.address, U96::MAX, deadline, sig);
    reverts!(r, BadOperatorConsent(victim.address));
    // Used once, not twice (the nonce moves on): bind, rotate away, try to re-bind with the old one.
    let (deadline, sig) = b.consent(0, &victim);
    b.register_signed(0, victim.address, U96::MAX, deadline, sig.clone())
        .expect_success();
    let fresh = Account::numbered(310);
    b.s.chain.fund(fresh.address);
    b.update(0, &fresh, big_capacity()).expect_success();
    let owner = b.owner(0);
    let call = Staking::updateProviderCall::new((
        victim.address,
        big_capacity(),
        "x".to_string(),
        U96::MAX,
        deadline,
        sig,
    ));
    let r = b.send(owner, call);
    reverts!(r, BadOperatorConsent(victim.address));
}

#[test]
fn register_reverts_already_registered() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let provider = b.owner(0);
    let other = Account::numbered(300);
    let r = b.register_as(0, &other);
    reverts!(r, ProviderAlreadyRegistered(provider));
}

#[test]
fn register_reverts_operator_zero_or_taken() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let taken = b.operator_account(0);
    let (deadline, sig) = b.consent(1, &taken);
    for operator in [Address::ZERO, taken.address] {
        let r = b.register_signed(1, operator, U96::MAX, deadline, sig.clone());
        reverts!(r, OperatorUnavailable(operator));
    }
    assert_eq!(b.info(1).operator, Address::ZERO);
}

#[test]
fn update_provider_succeeds_changes_capacity_same_operator() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let (owner, op) = (b.owner(0), b.operator_account(0));
    let mut cap = big_capacity();
    cap.gpuCount = 2;
    let e = ev::<Staking::ProviderUpdated>(b.update(0, &op, cap.clone()));
    assert_eq!((e.provider, e.operator), (owner, op.address));
    assert_eq!((e.capacity, e.metadataURI.as_str()), (cap.clone(), "v2"));
    assert_eq!(
        (b.info(0).capacity, b.provider_of(op.address)),
        (cap, owner)
    );
}

#[test]
fn update_provider_reverts_not_registered() {
    let mut b = Bed::new();
    let provider = b.owner(0);
    let op = b.operator_account(0);
    let r = b.update(0, &op, big_capacity());
    reverts!(r, ProviderNotRegistered(provider));
}

#[test]
fn update_provider_frees_old_operator_on_operator_change() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let (owner, old) = (b.owner(0), b.operator_account(0));
    let new = Account::numbered(300);
    b.update(0, &new, big_capacity()).expect_success();
    assert_eq!(b.provider_of(old.address), Address::ZERO);
    assert_eq!(
        (b.provider_of(new.address), b.info(0).operator),
        (owner, new.address)
    );
    // The freed key can serve another provider now (with a fresh consent).
    b.register_as(1, &old).expect_success();
    let owner1 = b.owner(1);
    assert_eq!(b.provider_of(old.address), owner1);
}

#[test]
fn update_provider_reverts_operator_zero_or_taken() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    b.register(1).expect_success();
    let taken = b.operator_account(1);
    let (deadline, sig) = b.consent(0, &taken);
    let owner = b.owner(0);
    for operator in [Address::ZERO, taken.address] {
        let call = Staking::updateProviderCall::new((
            operator,
            big_capacity(),
            "v2".to_string(),
            U96::MAX,
            deadline,
            sig.clone(),
        ));
        let r = b.send(owner, call);
        reverts!(r, OperatorUnavailable(operator));
    }
    assert_eq!(b.info(0).operator, b.op(0));
}

// ==================================================================== collateral ceiling

#[test]
fn the_collateral_ceiling_bounds_what_the_operator_can_lock_mec07() {
    // The owner bounds what a leaked operator key can put at risk at once.
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    let op = b.operator_account(0);
    b.update_ceiling(0, &op, big_capacity(), U96::from(usd(300)))
        .expect_success();
    assert_eq!(b.free_stake(0), usd(300));
    assert!(!b.lock(0, usd(300) + 1));
    assert!(b.lock(0, usd(200)));
    assert!(!b.lock(0, usd(100) + 1));
    assert!(b.lock(0, usd(100)));
    assert_eq!(b.free_stake(0), 0);
    // The rest of the stake stays the owner's to unbond.
    b.unbond(0, usd(700)).expect_success();
    // Lowering the ceiling below what is locked stops new locks; it never unlocks anything.
    b.update_ceiling(0, &op, big_capacity(), U96::from(usd(100)))
        .expect_success();
    assert_eq!(b.state(0), (usd(300), usd(300), usd(700)));
    assert!(!b.lock(0, 1));
}

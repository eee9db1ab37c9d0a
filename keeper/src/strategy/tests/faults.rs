//! The v2 rules for faults: unavailable results (MEC-04), faults after a close (MEC-05), and
//! the tenant's priority.

use super::*;

#[test]
fn mec_04_unavailable_results_are_challenged_once_and_unanswered_challenges_proven() {
    let mut l = lease(0);
    l.result = Some(posted(1_500));
    let at = |checked: Check| {
        let mut l = l.clone();
        l.checked = Some(checked);
        l
    };
    let missing = |tries| Check::Missing {
        tries,
        why: "connection refused".into(),
        since: 1,
    };
    // A first failure is looked at again; a second makes it unavailable: challenge it.
    let v = view(vec![(1, at(missing(1)))]);
    assert_eq!(
        names(&plan(&v, &clock(1_600), Flags::ALL, &inputs())),
        ["fraud"]
    );
    let v = view(vec![(1, at(missing(2)))]);
    let w = plan(&v, &clock(1_600), Flags::ALL, &inputs());
    assert_eq!(w[0].action, Action::Challenge(id(1)));
    assert_eq!(
        (w[0].reward, w[0].at_risk, w[0].follow_up_gas),
        (500, BOND, PROVE_UNAVAILABLE_GAS)
    );
    // Served bytes that are not the committed ones: challenged at once.
    let v = view(vec![(1, at(Check::Mismatch("root".into())))]);
    assert_eq!(
        names(&plan(&v, &clock(1_600), Flags::ALL, &inputs())),
        ["challenge"]
    );
    // Not after the window.
    assert!(
        plan(&v, &clock(2_101), Flags::ALL, &inputs())
            .iter()
            .all(|w| w.action != Action::Challenge(id(1)))
    );
    // A private result is not bet on, unless asked to.
    let v = view(vec![(1, at(Check::Private("401".into())))]);
    assert!(plan(&v, &clock(1_600), Flags::ALL, &inputs()).is_empty());
    let bet = Flags {
        challenge_private: true,
        ..Flags::ALL
    };
    assert_eq!(
        names(&plan(&v, &clock(1_600), bet, &inputs())),
        ["challenge"]
    );
    // One challenge at a time: someone else's open one is waited for; its fee is its
    // challenger's for a response window (100 s here), then whoever proves it earns it.
    let mut open = at(missing(2));
    open.challenges.insert(
        4,
        Challenged {
            challenger: OTHER,
            deadline: 1_700,
        },
    );
    let v = view(vec![(1, open.clone())]);
    assert!(plan(&v, &clock(1_700), Flags::ALL, &inputs()).is_empty());
    assert!(plan(&v, &clock(1_800), Flags::ALL, &inputs()).is_empty());
    let w = plan(&v, &clock(1_801), Flags::ALL, &inputs());
    assert_eq!(w[0].action, Action::ProveUnavailable(id(1), 4));
    assert_eq!((w[0].reward, w[0].returns, w[0].urgent), (500, 0, true));
    // Our own: its bond comes back with the proof.
    open.challenges.insert(
        4,
        Challenged {
            challenger: ME,
            deadline: 1_700,
        },
    );
    let v = view(vec![(1, open.clone())]);
    assert_eq!(
        plan(&v, &clock(1_701), Flags::ALL, &inputs())[0].returns,
        BOND
    );
    // Also past the window: an open challenge holds the lease.
    assert_eq!(
        names(&plan(&v, &clock(2_500), Flags::ALL, &inputs())),
        ["unavailable"]
    );
    // Answered: the provider holds its data; no second challenge, and the lease completes.
    let mut answered = at(missing(2));
    answered.answered = true;
    let v = view(vec![(1, answered)]);
    assert!(plan(&v, &clock(1_600), Flags::ALL, &inputs()).is_empty());
    assert_eq!(
        names(&plan(&v, &clock(2_101), Flags::ALL, &inputs())),
        ["close"]
    );
    // With a close grace, its provider closes it first (no keeper fee): the keeper waits.
    let graced = Inputs {
        close_grace: 30,
        ..inputs()
    };
    assert!(plan(&v, &clock(2_130), Flags::ALL, &graced).is_empty());
    assert_eq!(
        names(&plan(&v, &clock(2_131), Flags::ALL, &graced)),
        ["close"]
    );
    // Without the challenge strategy: no download of a container result, no challenge.
    let off = Flags {
        challenge: false,
        ..Flags::ALL
    };
    let v = view(vec![(1, l.clone())]);
    assert!(plan(&v, &clock(1_600), off, &inputs()).is_empty());
}

#[test]
fn mec_05_a_fault_after_a_close_pays_only_for_a_result_the_tenant_accepted() {
    // Accepted at 1,550 (paid 500): a wrong or unavailable result still pays, in stake tokens,
    // 5 % of the tenant's compensation.
    let mut l = lease(1);
    l.result = Some(posted(1_500));
    l.escrow = 0;
    l.closed = Some(Closed {
        at: 1_550,
        reason: ACCEPTED,
        paid: 500,
    });
    let v = view(vec![(1, l.clone())]);
    let w = plan(&v, &clock(1_600), Flags::ALL, &inputs());
    assert_eq!(w[0].action, Action::Verify(id(1)));
    assert_eq!((w[0].reward, w[0].token), (25, STAKE));
    // Never closed again, nor checked after its window.
    let mut ok = l.clone();
    ok.checked = Some(Check::Correct);
    assert!(plan(&view(vec![(1, ok)]), &clock(2_101), Flags::ALL, &inputs()).is_empty());
    assert!(plan(&v, &clock(2_101), Flags::ALL, &inputs()).is_empty());
    // A tenant's close past the deadline of a lease without a result: the missed deadline is
    // still provable, but returns nothing to anyone (planned only when named unpaid).
    let mut late = lease(0);
    late.escrow = 0;
    late.closed = Some(Closed {
        at: 4_700,
        reason: 0,
        paid: 0,
    });
    let v = view(vec![(1, late)]);
    assert!(plan(&v, &clock(4_800), Flags::ALL, &inputs()).is_empty());
    let mut inp = inputs();
    inp.unpaid.insert("missed-deadline".into());
    let w = plan(&v, &clock(4_800), Flags::ALL, &inp);
    assert_eq!(names(&w), ["missed-deadline"]);
    assert_eq!(w[0].reward, 0);
    // Past the fault horizon: nothing at all.
    assert!(plan(&v, &clock(4_700 + 10_001), Flags::ALL, &inp).is_empty());
    // A tenant proving its own lease earns no fee.
    let mut own = inputs();
    own.me = Address::repeat_byte(1);
    assert_eq!(fault_reward(&lease(0), &module(), &own).0, 0);
    // A running service lease's fault pays the provider its live time up to the lapse first
    // (1,000 s at 1 unit: the last heartbeat at 1,900, a 100 s period): the fee is a share of the
    // rest only (500 bps of 9,000), not of the whole escrow.
    let mut with_live = inputs();
    with_live.liveness.insert(
        Address::repeat_byte(2),
        Liveness {
            at: 1_900,
            period: 100,
            epoch: 1,
            epoch_start: 900,
            prev_start: 0,
            prev_end: 0,
        },
    );
    let service = lease(2);
    assert_eq!(fault_reward(&service, &module(), &with_live).0, 450);
    assert_eq!(fault_reward(&lease(0), &module(), &with_live).0, 500);
}

#[test]
fn a_fault_is_proven_once_the_tenants_priority_has_passed_and_it_pays() {
    let mut inp = inputs();
    inp.modules.insert(
        1,
        ModuleParams {
            tenant_priority: 300,
            ..module()
        },
    );
    // A missed deadline provable since 4,660: it pays its prover after 4,960.
    let v = view(vec![(1, lease(0))]);
    assert!(plan(&v, &clock(4_661), Flags::ALL, &inp).is_empty());
    assert!(plan(&v, &clock(4_960), Flags::ALL, &inp).is_empty());
    let w = plan(&v, &clock(4_961), Flags::ALL, &inp);
    assert_eq!(names(&w), ["missed-deadline"]);
    assert_eq!(w[0].reward, 500);
    // Named unpaid, it goes at once, for nothing.
    inp.unpaid.insert("missed-deadline".into());
    let w = plan(&v, &clock(4_661), Flags::ALL, &inp);
    assert_eq!((names(&w), w[0].reward), (vec!["missed-deadline"], 0));
    inp.unpaid.clear();
    // A result is checked at once, whatever its proof would pay; a wrong one is proven once
    // the fee is due (posted at 1,500: after 1,800, inside its window).
    let mut l = lease(1);
    l.result = Some(posted(1_500));
    let v = view(vec![(1, l.clone())]);
    let w = plan(&v, &clock(1_501), Flags::ALL, &inp);
    assert_eq!(
        (w[0].action.clone(), w[0].reward),
        (Action::Verify(id(1)), 0)
    );
    l.checked = Some(Check::Wrong);
    let v = view(vec![(1, l.clone())]);
    assert!(plan(&v, &clock(1_800), Flags::ALL, &inp).is_empty());
    let w = plan(&v, &clock(1_801), Flags::ALL, &inp);
    assert_eq!(
        (w[0].action.clone(), w[0].reward),
        (Action::Verify(id(1)), 500)
    );
    // An unavailable result: challenged at once (its proof will pay), proven after the
    // response window and the priority; our own bond waits with it.
    l.checked = Some(Check::Mismatch("root".into()));
    let v = view(vec![(1, l.clone())]);
    assert_eq!(
        names(&plan(&v, &clock(1_501), Flags::ALL, &inp)),
        ["challenge"]
    );
    l.challenges.insert(
        0,
        Challenged {
            challenger: ME,
            deadline: 1_600,
        },
    );
    let v = view(vec![(1, l)]);
    assert!(plan(&v, &clock(1_900), Flags::ALL, &inp).is_empty());
    let w = plan(&v, &clock(1_901), Flags::ALL, &inp);
    assert_eq!(w[0].action, Action::ProveUnavailable(id(1), 0));
    assert_eq!((w[0].reward, w[0].returns), (500, BOND));
}

/// A lease that another proof faulted (or that closed) with challenges still open: only our own
/// challenge is voided, past its deadline, for its bond; nothing else is planned on it (no fault
/// fee, no close, no check). Before, the view dropped the lease at its end and our bond stayed in
/// the module.
#[test]
fn an_ended_lease_with_our_challenge_open_is_voided_for_the_bond() {
    let mut l = lease(0);
    l.result = Some(posted(1_500));
    l.checked = Some(Check::Missing {
        tries: 2,
        why: "gone".into(),
        since: 1,
    });
    l.ended = true;
    l.challenges.insert(
        3,
        Challenged {
            challenger: OTHER,
            deadline: 1_600,
        },
    );
    // Someone else's: not ours to void, whatever the clock.
    let v = view(vec![(1, l.clone())]);
    for t in [1_550, 1_601, 9_999] {
        assert!(plan(&v, &clock(t), Flags::ALL, &inputs()).is_empty());
    }
    l.challenges.insert(
        5,
        Challenged {
            challenger: ME,
            deadline: 1_700,
        },
    );
    let v = view(vec![(1, l)]);
    assert!(plan(&v, &clock(1_700), Flags::ALL, &inputs()).is_empty());
    let w = plan(&v, &clock(1_701), Flags::ALL, &inputs());
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].action, Action::ProveUnavailable(id(1), 5));
    assert_eq!((w[0].reward, w[0].returns, w[0].urgent), (0, BOND, false));
}

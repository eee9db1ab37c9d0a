//! The v2 rules for closing and settling: service accrual, batch leases without a result
//! (MEC-02), settlement batches, lapsed services (MEC-09), stale reports and held results.

use super::*;

#[test]
fn service_accrual_mirrors_the_settle_liveness_cap() {
    let l = lease(2);
    // The current epoch began before the last settlement: paid to its last beat + period.
    assert_eq!(service_owed(&l, &live(1_400), 1_500, 6), 460);
    assert_eq!(service_owed(&l, &live(1_490), 1_500, 6), 500);
    // A new epoch since: paid to the end of the previous one, if that one ran at settled_at.
    let back = Liveness {
        at: 1_500,
        period: 60,
        epoch: 2,
        epoch_start: 1_480,
        prev_start: 900,
        prev_end: 1_300,
    };
    assert_eq!(service_owed(&l, &back, 1_500, 6), 300);
    // Neither epoch ran at settled_at: nothing.
    let later = Liveness {
        prev_start: 1_100,
        ..back
    };
    assert_eq!(service_owed(&l, &later, 1_500, 6), 0);
    // Never beat: nothing; not acknowledged: nothing.
    assert_eq!(service_owed(&l, &Liveness::default(), 1_500, 6), 0);
    let mut unacked = l.clone();
    unacked.acknowledged = false;
    assert_eq!(service_owed(&unacked, &live(1_490), 1_500, 6), 0);
    // Capped by the end and by the escrow.
    assert_eq!(service_owed(&l, &live(99_999), 99_999, 6), 3_600);
    let mut poor = l.clone();
    poor.escrow = 1_000;
    assert_eq!(service_owed(&poor, &live(99_999), 99_999, 6), 1_000);
    // A held result's pay: to the result, never past the deadline.
    let b = lease(0);
    assert_eq!(held_pay(&b, &posted(1_500), 6), 500);
    assert_eq!(held_pay(&b, &posted(4_630), 6), 3_600);
    assert_eq!(hold_end(&b, &posted(4_630), &module()), 4_600 + 600);
}

#[test]
fn mec_02_a_batch_lease_without_a_result_is_never_closed_or_settled_only_faulted() {
    // A deposit below rate x duration: "exhausted" long before the deadline.
    let mut l = lease(0);
    l.escrow = 2_000;
    let v = view(vec![(1, l.clone())]);
    for now in [1_500, 3_500, 4_600, 4_660] {
        assert!(
            plan(&v, &clock(now), Flags::ALL, &inputs()).is_empty(),
            "something planned at {now}"
        );
    }
    // One second past end + grace: the missed deadline, paying 5 % of the refund.
    let w = plan(&v, &clock(4_661), Flags::ALL, &inputs());
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].action, Action::ProveMissedDeadline(id(1)));
    assert_eq!((w[0].reward, w[0].token, w[0].urgent), (100, TOKEN, true));
    // Without the missed-deadline strategy nothing else ends it: never a close.
    let flags = Flags {
        missed_deadline: false,
        ..Flags::ALL
    };
    assert!(plan(&v, &clock(99_999), flags, &inputs()).is_empty());
    // Not acknowledged within the start window: a no-show.
    l.acknowledged = false;
    let v = view(vec![(1, l)]);
    assert!(plan(&v, &clock(1_120), Flags::ALL, &inputs()).is_empty());
    let w = plan(&v, &clock(1_121), Flags::ALL, &inputs());
    assert_eq!(names(&w), ["no-show"]);
}

#[test]
fn only_acknowledged_service_leases_are_settled_in_batches_grouped_by_provider() {
    let mut leases = Vec::new();
    for i in 1..=5u8 {
        let mut l = lease(2);
        l.provider = Address::repeat_byte(10 - i % 2);
        l.settled_at = 1_000 + u64::from(i);
        leases.push((i, l));
    }
    // Not acknowledged yet (inside its start window): nothing to pay.
    let mut unacked = lease(2);
    unacked.acknowledged = false;
    (unacked.start, unacked.settled_at) = (1_500, 1_500);
    leases.push((6, unacked));
    // A running batch lease owes nothing before its result stands.
    leases.push((7, lease(0)));
    let v = view(leases);
    let mut inp = inputs();
    for p in [9u8, 10, 2] {
        inp.liveness.insert(Address::repeat_byte(p), live(1_590));
    }
    let w = plan(&v, &clock(1_600), Flags::ALL, &inp);
    // Five leases in batches of three, best-paying first, one provider's leases together.
    assert_eq!(names(&w), ["settle", "settle"]);
    let Action::Settle(first) = &w[0].action else {
        panic!("{w:?}")
    };
    assert_eq!(first.len(), 3);
    assert!(!first.contains(&id(6)) && !first.contains(&id(7)));
    let provs: Vec<Address> = first.iter().map(|i| v.leases[i].provider).collect();
    assert!(provs.windows(2).all(|p| p[0] <= p[1]), "{provs:?}");
    // The reward is the keeper's 1 % of what the batch pays.
    let fees: u64 = first
        .iter()
        .map(|i| (1_600 - v.leases[i].settled_at) / 100)
        .sum();
    assert_eq!(w[0].reward, u128::from(fees));
    // A lease whose fee does not beat one more lease's gas stays out.
    inp.min_lease_fee.insert(TOKEN, 6);
    assert!(plan(&v, &clock(1_600), Flags::ALL, &inp).is_empty());
}

#[test]
fn mec_09_a_lapsed_service_lease_is_closed_and_paid_only_up_to_the_lapse() {
    let v = view(vec![(1, lease(2))]);
    let mut inp = inputs();
    // The provider lapsed and came back: a new epoch since the last settlement.
    let back = Liveness {
        at: 1_900,
        period: 60,
        epoch: 2,
        epoch_start: 1_900,
        prev_start: 900,
        prev_end: 1_300,
    };
    inp.liveness.insert(Address::repeat_byte(2), back);
    let w = plan(&v, &clock(1_910), Flags::ALL, &inp);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].action, Action::Close(id(1)));
    // 1 % of the 300 s up to the lapse, not of the 910 s since the start.
    assert_eq!(w[0].reward, 3);
    assert!(lapsed(&v.leases[&id(1)], &back, 1_910));
    // Stale now (no heartbeat for over a period): reported first, the proof paying for both.
    inp.liveness.insert(Address::repeat_byte(2), live(1_300));
    let w = plan(&v, &clock(1_400), Flags::ALL, &inp);
    assert_eq!(names(&w), ["report-stale"]);
    // The fault pays the provider its 360 s of live time (up to 1,300 + 60) first: the fee is 5 %
    // of the 9,640 refunded.
    assert_eq!((w[0].reward, w[0].follow_up_gas), (482, PROVE_STALE_GAS));
    // Without the stale strategy, a stale provider's lease is closed as lapsed.
    let flags = Flags {
        stale_heartbeat: false,
        ..Flags::ALL
    };
    let w = plan(&v, &clock(1_400), flags, &inp);
    assert_eq!(w[0].action, Action::Close(id(1)));
    assert_eq!(w[0].reward, 3);
    // Expired with a live provider: closed; ran dry: closed.
    inp.liveness.insert(Address::repeat_byte(2), live(4_590));
    assert_eq!(names(&plan(&v, &clock(4_600), Flags::ALL, &inp)), ["close"]);
    let mut dry = lease(2);
    dry.escrow = 100;
    let v = view(vec![(1, dry)]);
    inp.liveness.insert(Address::repeat_byte(2), live(1_190));
    assert_eq!(names(&plan(&v, &clock(1_200), Flags::ALL, &inp)), ["close"]);
}

#[test]
fn stale_reports_wait_for_the_grace_and_are_void_when_the_provider_came_back_in_time() {
    let grace = 60;
    // No heartbeat since the report: provable after the grace, not at it.
    assert_eq!(stale_state(1_000, &live(990), grace, 1_060), Stale::Waiting);
    assert_eq!(
        stale_state(1_000, &live(990), grace, 1_061),
        Stale::Provable
    );
    // Came back within the grace (a new epoch at 1,030): void.
    let back = |start| Liveness {
        at: start,
        period: 60,
        epoch: 2,
        epoch_start: start,
        prev_start: 900,
        prev_end: 1_050,
    };
    assert_eq!(stale_state(1_000, &back(1_030), grace, 1_100), Stale::Void);
    assert_eq!(stale_state(1_000, &back(1_060), grace, 1_100), Stale::Void);
    // Came back after it: the lapse lasted the grace, still provable.
    assert_eq!(
        stale_state(1_000, &back(1_061), grace, 1_100),
        Stale::Provable
    );
    // In the plan: waiting, then the proof.
    let mut l = lease(2);
    l.stale_since = Some(1_300);
    let v = view(vec![(1, l)]);
    let mut inp = inputs();
    inp.liveness.insert(Address::repeat_byte(2), live(1_200));
    assert!(plan(&v, &clock(1_360), Flags::ALL, &inp).is_empty());
    let w = plan(&v, &clock(1_361), Flags::ALL, &inp);
    assert_eq!(names(&w), ["stale-heartbeat"]);
    // 5 % of the 9,740 refunded (the 260 s live up to 1,200 + 60 are paid to the provider).
    assert_eq!((w[0].reward, w[0].urgent), (487, true));
    // Void: a live provider's lease lapsed (new epoch) is closed instead.
    inp.liveness.insert(
        Address::repeat_byte(2),
        Liveness {
            prev_start: 900,
            prev_end: 1_260,
            ..back(1_320)
        },
    );
    assert_eq!(names(&plan(&v, &clock(1_361), Flags::ALL, &inp)), ["close"]);
    // No report after the lease end: the provider owes it no heartbeat.
    let v = view(vec![(1, lease(2))]);
    inp.liveness.insert(Address::repeat_byte(2), live(4_000));
    assert_eq!(names(&plan(&v, &clock(4_700), Flags::ALL, &inp)), ["close"]);
}

#[test]
fn held_results_are_checked_then_completed_after_their_window_without_open_challenges() {
    let mut l = lease(1);
    l.result = Some(posted(1_500));
    let v = view(vec![(1, l.clone())]);
    // In the window (result at 1,500, held to 2,100): check it; a wrong one pays 5 % of 10,000.
    let w = plan(&v, &clock(1_600), Flags::ALL, &inputs());
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].action, Action::Verify(id(1)));
    assert_eq!((w[0].reward, w[0].token, w[0].urgent), (500, TOKEN, true));
    // Checked correct: nothing until the window is over, then the close (1 % of 500 held).
    l.checked = Some(Check::Correct);
    let v = view(vec![(1, l.clone())]);
    assert!(plan(&v, &clock(2_100), Flags::ALL, &inputs()).is_empty());
    let w = plan(&v, &clock(2_101), Flags::ALL, &inputs());
    assert_eq!(w[0].action, Action::Close(id(1)));
    assert_eq!((w[0].reward, w[0].urgent), (5, false));
    // An open challenge blocks the completion until it is answered or proven.
    l.challenges.insert(
        3,
        Challenged {
            challenger: OTHER,
            deadline: 2_150,
        },
    );
    let v = view(vec![(1, l.clone())]);
    assert!(plan(&v, &clock(2_101), Flags::ALL, &inputs()).is_empty());
    // Proven wrong: never closed as completed.
    l.challenges.clear();
    l.checked = Some(Check::Wrong);
    let v = view(vec![(1, l)]);
    assert!(!names(&plan(&v, &clock(2_101), Flags::ALL, &inputs())).contains(&"close"));
}

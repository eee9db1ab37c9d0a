//! Properties of whole plans over random views and clocks.

use super::*;

fn arb_lease() -> impl Strategy<Value = Lease> {
    (
        (
            0u8..3,
            any::<bool>(),
            0u64..3_000,
            0u64..5_000,
            0u128..100_000,
        ),
        (
            prop::option::of(0u64..5_000),
            prop::option::of(0u64..5_000),
            0u8..4,
            0u8..6,
            prop::option::of((0u64..6_000, any::<bool>())),
        ),
    )
        .prop_map(
            |((kind, ack, settled, len, escrow), (result, stale, prov, check, challenge))| {
                let mut l = lease(kind);
                l.acknowledged = ack;
                // A batch lease's deposit pays its faults' fees (a deposit is never tiny).
                l.settled_at = 1_000 + settled.min(len);
                l.end = 1_000 + len;
                l.escrow = if kind == 2 { escrow } else { escrow.max(20) };
                l.provider = Address::repeat_byte(prov);
                l.stale_since = stale.map(|s| 1_000 + s);
                if let Some(at) = result
                    && kind != 2
                {
                    l.result = Some(posted(1_000 + at.min(len + 60)));
                    l.acknowledged = true;
                    l.checked = match check {
                        0 => None,
                        1 => Some(Check::Correct),
                        2 => Some(Check::Available),
                        3 => Some(Check::Missing {
                            tries: 2,
                            why: String::new(),
                            since: 1,
                        }),
                        4 => Some(Check::Private(String::new())),
                        _ => Some(Check::Mismatch(String::new())),
                    };
                    if let Some((deadline, ours)) = challenge {
                        l.challenges.insert(
                            0,
                            Challenged {
                                challenger: if ours { ME } else { OTHER },
                                deadline: 1_000 + deadline,
                            },
                        );
                    }
                }
                l
            },
        )
}

fn arb_live() -> impl Strategy<Value = Liveness> {
    (
        0u64..8_000,
        1u64..120,
        0u64..8_000,
        prop::option::of(0u64..8_000),
    )
        .prop_map(|(at, period, start, prev)| Liveness {
            at: at.max(start),
            period,
            epoch: 1,
            epoch_start: start,
            prev_start: prev.map_or(0, |p| p.min(start)),
            prev_end: prev.map_or(0, |p| p.min(start) + period),
        })
}

proptest! {
    /// No id twice in one plan, none that is busy; a batch lease without a result is never
    /// closed (MEC-02), and a lease is closed only once its rules allow it.
    #[test]
    fn no_lease_twice_and_no_batch_lease_without_a_result_closed(
        leases in prop::collection::vec(arb_lease(), 0..40),
        busy in prop::collection::vec(0u8..40, 0..10),
        now in 1_000u64..8_000,
        lives in prop::collection::vec(arb_live(), 4),
        min_fee in 0u128..40,
        priority in 0u64..900,
    ) {
        let v = view(leases.into_iter().enumerate().map(|(i, l)| (i as u8, l)).collect());
        let mut inp = inputs();
        inp.modules.insert(1, ModuleParams { tenant_priority: priority, ..module() });
        inp.busy = busy.iter().map(|b| B256::repeat_byte(*b)).collect();
        inp.min_lease_fee.insert(TOKEN, min_fee);
        for (i, l) in lives.into_iter().enumerate() {
            inp.liveness.insert(Address::repeat_byte(i as u8), l);
        }
        let c = clock(now);
        let w = plan(&v, &c, Flags::ALL, &inp);
        let mut seen = HashSet::new();
        for item in &w {
            for id in item.action.ids() {
                prop_assert!(seen.insert(id), "{id} twice");
                prop_assert!(!inp.busy.contains(&id));
            }
            match &item.action {
                Action::Settle(ids) => {
                    prop_assert!(ids.len() <= inp.settle_max);
                    let mut sum = 0;
                    for id in ids {
                        let l = &v.leases[id];
                        prop_assert!(l.service() && l.acknowledged);
                        let live = inp.liveness[&l.provider];
                        let fee = bps(service_owed(l, &live, now, 6), u64::from(l.keeper_fee_bps));
                        prop_assert!(fee > 0 && fee >= min_fee, "lease {} pays {}", id, fee);
                        sum += fee;
                    }
                    prop_assert_eq!(item.reward, sum);
                }
                Action::Close(id) => {
                    let l = &v.leases[id];
                    if l.service() {
                        let live = inp.liveness[&l.provider];
                        prop_assert!(now >= l.end || lapsed(l, &live, now)
                            || service_owed(l, &live, now, 6) >= l.escrow);
                    } else {
                        let r = l.result.as_ref();
                        prop_assert!(r.is_some(), "batch lease {} closed without a result", id);
                        prop_assert!(now > hold_end(l, r.expect("checked"), &module()));
                        prop_assert!(l.challenges.is_empty());
                    }
                }
                Action::ProveMissedDeadline(id) => {
                    let l = &v.leases[id];
                    prop_assert!(!l.service() && l.result.is_none());
                    // Not before it pays its fee (the tenant's priority).
                    prop_assert!(now > l.end + 60 + priority);
                }
                Action::Challenge(id) => {
                    let l = &v.leases[id];
                    prop_assert!(l.challenges.is_empty() && !l.answered);
                }
                _ => {}
            }
        }
    }

    /// Poll after poll, with each plan carried out as the chain would: no lease is settled
    /// when nothing is owed (no second is paid twice), nothing finished is touched again, no
    /// batch lease without a result is closed, and once every deadline has passed every lease
    /// was ended (closed, or faulted by a proof) exactly once.
    #[test]
    fn polls_settle_no_second_twice_and_end_every_lease_exactly_once(
        leases in prop::collection::vec(arb_lease(), 0..30),
        steps in prop::collection::vec(0u64..900, 1..12),
        lives in prop::collection::vec(arb_live(), 4),
        priority in 0u64..900,
    ) {
        let mut v = view(leases.into_iter().enumerate().map(|(i, l)| (i as u8, l)).collect());
        let ids: Vec<B256> = v.leases.keys().copied().collect();
        let mut inp = inputs();
        inp.modules.insert(1, ModuleParams { tenant_priority: priority, ..module() });
        for (i, l) in lives.into_iter().enumerate() {
            inp.liveness.insert(Address::repeat_byte(i as u8), l);
        }
        let mut ended: HashMap<B256, usize> = HashMap::new();
        let mut now = 1_000;
        // The steps, then polls long after every deadline until nothing is left to do.
        let polls = steps.into_iter().chain(std::iter::repeat_n(1_000_000, 8));
        for dt in polls {
            now += dt;
            let c = clock(now);
            for w in plan(&v, &c, Flags::ALL, &inp) {
                for id in w.action.ids() {
                    prop_assert!(!v.done.contains_key(&id), "{} acted on after it finished", id);
                }
                match &w.action {
                    Action::Settle(batch) => {
                        for id in batch {
                            let l = v.leases.get_mut(id).expect("planned from the view");
                            let live = inp.liveness[&l.provider];
                            let owes = service_owed(l, &live, now, 6);
                            prop_assert!(owes > 0, "{} settled with nothing owed", id);
                            let cap = if live.epoch_start <= l.settled_at {
                                live.at + live.period
                            } else {
                                live.prev_end
                            };
                            l.settled_at = now.min(l.end).min(cap);
                            l.escrow -= owes;
                        }
                    }
                    Action::Close(id) => {
                        prop_assert!(
                            v.leases[id].service() || v.leases[id].result.is_some(),
                            "batch lease {} closed without a result", id
                        );
                        *ended.entry(*id).or_default() += 1;
                        v.leases.remove(id);
                        v.done.insert(*id, now);
                    }
                    Action::ProveNoShow(id)
                    | Action::ProveMissedDeadline(id)
                    | Action::ProveStale(id)
                    | Action::ProveUnavailable(id, _) => {
                        *ended.entry(*id).or_default() += 1;
                        v.leases.remove(id);
                        v.done.insert(*id, now);
                    }
                    Action::ReportStale(id) => {
                        v.leases.get_mut(id).expect("planned from the view").stale_since =
                            Some(now);
                    }
                    Action::Verify(id) => {
                        v.leases.get_mut(id).expect("planned from the view").checked =
                            Some(Check::Correct);
                    }
                    Action::Challenge(id) => {
                        v.leases.get_mut(id).expect("planned from the view").challenges.insert(
                            0,
                            Challenged { challenger: ME, deadline: now + 100 },
                        );
                    }
                    Action::Award(_) | Action::PlaceBid(_) => {}
                }
            }
        }
        prop_assert!(v.leases.is_empty(), "never ended: {:?}", v.leases.keys().collect::<Vec<_>>());
        for id in ids {
            prop_assert_eq!(ended.get(&id).copied(), Some(1), "lease {}", id);
        }
    }

    /// Nothing that does not pay is sent, unless it is named unpaid; a bond at risk is always
    /// covered by the reward.
    #[test]
    fn no_action_sent_for_work_that_does_not_pay(
        reward in 0u128..10_000_000,
        gas in 21_000u64..2_000_000,
        gas_price in 0u128..300_000_000_000,
        l1 in 0u128..1_000_000_000_000_000,
        urgent in any::<bool>(),
        bond in prop::option::of(0u128..10_000_000_000_000_000),
    ) {
        let p = Price { gas, gas_price, l1_fee: l1 };
        let mut w = Work::new(Action::Settle(vec![B256::ZERO]), reward, TOKEN, urgent);
        if let Some(b) = bond {
            w.action = Action::Challenge(B256::ZERO);
            w.at_risk = b;
            w.follow_up_gas = PROVE_UNAVAILABLE_GAS;
        }
        if decide(&w, &p, &policy()) == Decision::Send {
            let spend = p.cost() + u128::from(w.follow_up_gas) * gas_price + w.at_risk;
            let cost = wei_in(spend, TOKEN, &policy());
            prop_assert!(reward > 0 && reward * 10_000 >= cost * 12_000);
            prop_assert!(urgent || gas_price <= policy().max_gas_price);
        }
    }
}

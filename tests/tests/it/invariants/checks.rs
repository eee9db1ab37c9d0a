//! The properties checked after every step, and at the end of a case.

use super::*;

impl World {
    /// Once every window has passed: every lease was resolved, no escrow is left behind, and
    /// releasing held records frees every honest provider's collateral.
    pub(super) fn check_resolved(&mut self) {
        for l in &self.leases {
            if l.provider.is_some() {
                let j = self.s.job(l.id);
                assert!(
                    l.ended && j.status != 2,
                    "lease {} of tenant {} never resolved (status {}, kind {})",
                    l.id,
                    l.tenant,
                    j.status,
                    j.kind
                );
            }
        }
        self.s.chain.warp(FAULT_HORIZON + 1);
        let (k, m) = (self.s.keeper.address, self.s.market);
        let ids: Vec<B256> = self.leases.iter().map(|l| l.id).collect();
        // An order nobody awarded: anyone may cancel it once the award grace is over, which frees
        // the collateral its lowest on-chain bid reserved (AFR-01).
        for &id in &ids {
            if self.s.job(id).status == 1 {
                self.s.cancel(k, id).expect_success();
            }
        }
        self.s
            .chain
            .send(k, m, MarketAdmin::releaseHeldCall { leaseIds: ids })
            .expect_success();
        self.check_books(&Action::Warp { secs: 0 });
        for p in HONEST_PROVIDERS {
            let info = self.s.provider_info(p);
            assert_eq!(
                info.locked.to::<u128>(),
                0,
                "honest provider {p} still has collateral locked"
            );
        }
        self.check_nothing_stuck();
    }

    /// No stuck funds (INV-07): once every lease is resolved, every account takes what it is owed
    /// (market and staking credits, challenge bonds in wei). The market then holds only the
    /// protocol's fees, staking only stake (bonded or unbonding), and the results module nothing.
    fn check_nothing_stuck(&mut self) {
        let (token, m, staking, results) =
            (self.s.token, self.s.market, self.s.staking, self.s.results);
        // A challenge left open on a lease a fault already ended (the first unanswered chunk's
        // proof ends it; the tenant challenged them all): anyone voids it, its bond going back.
        let k = self.s.keeper.address;
        for id in self.leases.iter().map(|l| l.id).collect::<Vec<_>>() {
            let open = |s: &mut Suite| -> U256 {
                s.chain
                    .view(results, Results::openChallengesCall { leaseId: id })
            };
            let mut index = 0u64;
            while open(&mut self.s) > U256::ZERO {
                assert!(
                    index < 4_096,
                    "lease {id}: an open challenge past every chunk"
                );
                let c = self.s.chain.view(
                    results,
                    Results::challengeOfCall {
                        leaseId: id,
                        index: U256::from(index),
                    },
                );
                if c.challenger != Address::ZERO {
                    self.s
                        .chain
                        .send(
                            k,
                            results,
                            Results::proveUnavailableCall {
                                leaseId: id,
                                index: U256::from(index),
                            },
                        )
                        .expect_success();
                }
                index += 1;
            }
        }
        for a in self.accounts.clone() {
            if self.s.credit(a) > 0 {
                self.s
                    .chain
                    .send(a, m, Market::withdrawCall { token, to: a })
                    .expect_success();
            }
            if self.s.staking_credit(a) > 0 {
                self.s
                    .chain
                    .send(a, staking, Staking::withdrawCreditCall { to: a })
                    .expect_success();
            }
            let wei: U256 = self
                .s
                .chain
                .view(results, Results::ethCreditOfCall { account: a });
            if wei > U256::ZERO {
                self.s
                    .chain
                    .send(a, results, Results::withdrawEthCall { to: a })
                    .expect_success();
            }
        }
        let fees = self.protocol_fees();
        assert_eq!(
            self.s.balance(token, m),
            fees,
            "the market holds more than its fees"
        );
        let (staked, unbonding, _) = self.staking_totals();
        assert_eq!(
            self.s.balance(token, staking),
            staked + unbonding,
            "staking holds more than stake"
        );
        assert_eq!(
            self.s.chain.eth_balance(results),
            U256::ZERO,
            "the results module holds wei nobody can take"
        );
    }

    /// The properties, stated on their own terms.
    pub(super) fn check(&mut self, a: &Action) {
        self.check_books(a);
        let token = self.s.token;
        // Paid for delivery. What a tenant paid a third-party reporter for finding a fault in time
        // it did not watch is a finder's fee, not pay for the lease.
        for i in 0..self.leases.len() {
            let l = self.leases[i].clone();
            // Made whole, never more: no tenant, the adversary's included, gets back more than it
            // put into a lease. A fault's compensation is what the tenant lost; the rest of a
            // slash is not a tenant's to take (else faults are worth inviting).
            assert!(
                l.tenant_net >= 0,
                "after {a:?}: tenant {} got back {} more than it put into lease {}",
                l.tenant,
                -l.tenant_net,
                l.id
            );
            // Per-lease bounds (INV-03): a tenant never loses more to a lease than it deposited
            // into it, and a lease never pays more than its rate for the time since it started.
            assert!(
                l.tenant_net <= l.deposited as i128,
                "after {a:?}: tenant {} lost {} to lease {}, which it gave {}",
                l.tenant,
                l.tenant_net,
                l.id,
                l.deposited
            );
            if l.provider.is_none() {
                continue;
            }
            let in_escrow = if l.ended {
                0
            } else {
                self.s.job(l.id).escrow.to::<u128>() as i128
            };
            let paid = l.tenant_net - l.fees_paid - in_escrow;
            let ran = self.s.chain.now().saturating_sub(l.start);
            // In 18-decimal units: a cent token's rate is a fraction of a unit a second.
            let scale = 10i128.pow(18 - u32::from(self.play.decimals));
            assert!(
                paid * scale <= l.price as i128 * i128::from(ran),
                "after {a:?}: lease {} of tenant {} paid {paid} for {ran} s at {} (18 decimals) a second",
                l.id,
                l.tenant,
                l.price
            );
            if !HONEST_TENANTS.contains(&l.tenant) {
                continue;
            }
            assert!(
                l.tenant != ATTENTIVE_TENANT || l.fees_paid == 0,
                "after {a:?}: the attentive tenant paid a finder's fee of {} on lease {}",
                l.fees_paid,
                l.id
            );
            match l.kind {
                Kind::Service => {
                    let live = self.live_seconds(&l) as i128;
                    assert!(
                        paid * scale <= l.price as i128 * live,
                        "after {a:?}: service lease {} of tenant {} paid {paid} for {live} live s",
                        l.id,
                        l.tenant
                    );
                }
                _ => assert!(
                    paid <= 0 || l.delivered,
                    "after {a:?}: batch lease {} of tenant {} paid {paid} with no delivered result",
                    l.id,
                    l.tenant
                ),
            }
        }
        // No stake taken without the staker's fault.
        for (&p, &stake) in &self.honest_stake.clone() {
            let now: u128 = self.s.provider_info(p).stake.to();
            assert_eq!(now, stake, "after {a:?}: honest provider {p} lost stake");
        }
        // Conservation.
        let (m, lens, staking, results) =
            (self.s.market, self.s.lens, self.s.staking, self.s.results);
        let escrow: u128 = self
            .leases
            .iter()
            .map(|l| self.s.chain.view(lens, MarketLens::getJobCall { id: l.id }))
            .filter(|j| j.status == 1 || j.status == 2)
            .map(|j| j.escrow.to::<u128>())
            .sum();
        let credits: u128 = self
            .accounts
            .clone()
            .iter()
            .map(|&a| self.s.credit(a))
            .sum();
        let fees = self.protocol_fees();
        assert_eq!(
            self.s.balance(token, m),
            escrow + credits + fees,
            "after {a:?}: market conservation"
        );
        let (staked, unbonding, credits) = self.staking_totals();
        assert_eq!(
            self.s.balance(token, staking),
            staked + unbonding + credits,
            "after {a:?}: staking conservation"
        );
        let open: u128 = self
            .leases
            .iter()
            .map(|l| {
                self.s
                    .chain
                    .view(results, Results::openChallengesCall { leaseId: l.id })
                    .to::<u128>()
            })
            .sum();
        let eth_credits: u128 = self
            .accounts
            .clone()
            .iter()
            .map(|&a| {
                self.s
                    .chain
                    .view(results, Results::ethCreditOfCall { account: a })
                    .to::<u128>()
            })
            .sum();
        assert_eq!(
            self.s.chain.eth_balance(results),
            U256::from(open * CHALLENGE_BOND + eth_credits),
            "after {a:?}: challenge bonds"
        );
        // No profit for the adversary beyond what honest tenants paid its provider for delivered
        // work and the keeper fees it earned on their leases (services anyone may sell): every
        // fault fee it collects must cost it at least as much in slashed stake. Checked step by
        // step, so a gain cannot hide behind earlier losses.
        let now = self.adv_holdings() as i128;
        let excess = now - (self.adv_start + self.adv_fees + self.adv_paid_honest) as i128;
        assert!(
            excess <= self.adv_excess,
            "after {a:?}: the adversary gained {} beyond what it earned honestly (keeper fees {}, paid for work {})",
            excess - self.adv_excess,
            self.adv_fees,
            self.adv_paid_honest
        );
        self.adv_excess = excess;
    }

    /// The market's protocol fees in the suite's token.
    pub(super) fn protocol_fees(&mut self) -> u128 {
        let (lens, token) = (self.s.lens, self.s.token);
        self.s
            .chain
            .view(lens, MarketLens::protocolFeesCall { token })
            .to()
    }

    /// Staking's totals: (staked, unbonding, credits).
    fn staking_totals(&mut self) -> (u128, u128, u128) {
        let staking = self.s.staking;
        let chain = &mut self.s.chain;
        (
            chain.view(staking, Staking::totalStakedCall {}).to(),
            chain.view(staking, Staking::totalUnbondingCall {}).to(),
            chain.view(staking, Staking::totalCreditsCall {}).to(),
        )
    }

    /// The books, stated without the contracts' rules: where every token is, staking's totals,
    /// and the order lifecycle (STK-01, INV-02, INV-04, INV-06).
    pub(super) fn check_books(&mut self, a: &Action) {
        let (token, m, staking) = (self.s.token, self.s.market, self.s.staking);
        let supply: u128 = self
            .s
            .chain
            .view(token, MockStablecoin::totalSupplyCall {})
            .to();
        let mut holders = self.accounts.clone();
        holders.extend([m, staking, self.s.results]);
        let held: u128 = holders.iter().map(|&h| self.s.balance(token, h)).sum();
        // The suite's other accounts (spare tenants and providers) never act: what they hold
        // never changes.
        let outside = supply - held;
        assert_eq!(
            *self.outside.get_or_insert(outside),
            outside,
            "after {a:?}: tokens left the known accounts"
        );
        let (mut stake, mut unbonding) = (0u128, 0u128);
        for p in 0..3 {
            let info = self.s.provider_info(p);
            assert!(
                info.locked <= info.stake,
                "after {a:?}: provider {p} has {} locked of a {} stake",
                info.locked,
                info.stake
            );
            stake += info.stake.to::<u128>();
            unbonding += info.unbonding.to::<u128>();
        }
        let (total_staked, total_unbonding, _) = self.staking_totals();
        assert_eq!(
            (total_staked, total_unbonding),
            (stake, unbonding),
            "after {a:?}: staking totals against its providers' records"
        );
        for i in 0..self.leases.len() {
            let id = self.leases[i].id;
            let j = self.s.job(id);
            let now = Seen {
                status: j.status,
                held: j.held,
                terms: (j.provider, j.tenant, j.ratePerSecond, j.collateral),
            };
            let before = self.seen.insert(id, now);
            let (from, held) = before.map_or((0, false), |b| (b.status, b.held));
            // Where an order may be after one step (several transactions) from where it was.
            let allowed = match from {
                0 => true,
                1 => now.status != 0,
                2 => matches!(now.status, 2 | 3 | 5),
                // A fault outlives the close only while the record is held (MEC-05).
                3 => now.status == 3 || (now.status == 5 && held),
                // Cancelled and faulted are final.
                f => now.status == f,
            };
            assert!(
                allowed,
                "after {a:?}: order {id} went from status {from} to {}",
                now.status
            );
            if from == 3 && !held {
                assert!(!now.held, "after {a:?}: released record {id} is held again");
            }
            if let Some(b) = before.filter(|b| b.status == 2 && now.status == 2) {
                assert_eq!(
                    b.terms, now.terms,
                    "after {a:?}: running lease {id} changed its terms"
                );
            }
        }
    }

    /// Seconds lease `l`'s provider was live (by its heartbeats) from the start to its first lapse.
    pub(super) fn live_seconds(&self, l: &Lease) -> u64 {
        let now = self.s.chain.now();
        let end = now.min(l.start + u64::from(l.params.maxDuration));
        let beats = self
            .beats
            .get(&l.provider.expect("leased"))
            .cloned()
            .unwrap_or_default();
        let mut until = l.start;
        let before: Vec<u64> = beats.iter().copied().filter(|&b| b <= l.start).collect();
        let mut last = *before.last().unwrap_or(&l.start);
        for b in beats.into_iter().filter(|&b| b > l.start) {
            if b > last + HEARTBEAT {
                break;
            }
            last = b;
        }
        until = until.max((last + HEARTBEAT).min(end));
        until.saturating_sub(l.start)
    }
}

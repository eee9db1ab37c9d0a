//! The honest side: tenants, providers and the keeper reacting as their daemons would.

use super::*;

impl World {
    /// Honest tenants, providers and keeper react, as their daemons would each poll.
    pub(super) fn honest(&mut self) {
        self.adversary_reacts();
        let now = self.s.chain.now();
        // Honest providers beat on time while they may need to be live: while a service order is
        // open to bid on, or one of their service leases has not reached its end. After that they
        // stop (a provider owes no heartbeat past its leases).
        let open_service = self
            .orders
            .iter()
            .any(|&o| self.leases[o].kind == Kind::Service);
        for p in HONEST_PROVIDERS {
            let serving = self.leases.iter().any(|l| {
                l.provider == Some(p)
                    && l.kind == Kind::Service
                    && !l.ended
                    && now < l.start + u64::from(l.params.maxDuration)
            });
            let last = self
                .beats
                .get(&p)
                .and_then(|b| b.last())
                .copied()
                .unwrap_or(0);
            if (open_service || serving) && now + 150 > last + HEARTBEAT {
                self.beat(p);
            }
        }
        for i in 0..self.leases.len() {
            let l = self.leases[i].clone();
            let Some(p) = l.provider else { continue };
            if l.ended {
                continue;
            }
            let job = self.s.job(l.id);
            if job.status != 2 {
                continue;
            }
            // Honest providers: acknowledge, post the truth 30 s in, answer every challenge.
            if HONEST_PROVIDERS.contains(&p) {
                if !job.acknowledged {
                    self.s.ack(p, l.id).expect_success();
                }
                if l.kind != Kind::Service && l.posted.is_none() && now >= l.start + 30 {
                    let (r, c) = self.s.post(p, l.id, &l.truth);
                    assert!(r.success, "an honest provider's result is always accepted");
                    self.leases[i].posted = Some((c, Served::Bytes(l.truth.clone())));
                }
                if let Some((c, _)) = &self.leases[i].posted.clone() {
                    for chunk in 0..c.leaves() {
                        let open = self.s.chain.view(
                            self.s.results,
                            Results::challengeOfCall {
                                leaseId: l.id,
                                index: U256::from(chunk),
                            },
                        );
                        if open.challenger != Address::ZERO {
                            self.answer(i, chunk, p);
                        }
                    }
                }
            }
            // The honest keeper looks at each lease every `KEEPER_POLL` seconds.
            let keeper_turn = now >= l.keeper_next;
            if keeper_turn {
                self.leases[i].keeper_next = now + KEEPER_POLL;
            }
            if l.tenant == ATTENTIVE_TENANT {
                let t = self.s.tenant(ATTENTIVE_TENANT);
                self.watch(i, t, true);
            } else if keeper_turn {
                // The keeper watches every lease its tenant does not (the sleepy tenant's and the
                // adversary's own), as a market-wide keeper would.
                let k = self.s.keeper.address;
                self.watch(i, k, false);
            }
            if self.leases[i].ended || !keeper_turn {
                continue;
            }
            // The honest keeper completes held results after their window and closes expired
            // service leases.
            let j = self.s.job(l.id);
            if j.status == 2
                && !j.challenged
                && now > j.end.to::<u64>()
                && (j.kind == 2 || j.kind == 1)
            {
                let k = self.s.keeper.address;
                let before = self.snapshot();
                let r = self.s.close(k, l.id);
                self.account(i, before, &r);
            }
        }
    }

    /// An honest watcher of lease `i`: its attentive tenant, or the keeper (for the sleepy
    /// tenant's leases). It downloads and verifies the result, challenges what it cannot download,
    /// proves every fault it sees (the tenant at once, the keeper once the fee pays it) and closes
    /// lapsed service leases.
    pub(super) fn watch(&mut self, i: usize, who: Address, attentive: bool) {
        let l = self.leases[i].clone();
        let prove = |w: &mut Self, which: u8| {
            if attentive {
                w.prove(i, which, who);
            } else {
                w.keeper_prove(i, which);
            }
        };
        for which in [0u8, 1, 2, 4, 5] {
            if which == 2 && l.kind != Kind::Service {
                continue;
            }
            prove(self, which);
            if self.leases[i].ended {
                return;
            }
        }
        if l.kind == Kind::Service {
            // A lapsed service lease is closed: it pays only the live time.
            let j = self.s.job(l.id);
            let now = self.s.chain.now();
            let live = self.s.chain.view(
                self.s.staking,
                Staking::livenessCall {
                    provider: self.s.provider(l.provider.expect("leased")),
                },
            );
            if live.epochStart.to::<u64>() > j.settledAt.to::<u64>()
                || now > live.at.to::<u64>() + u64::from(live.period)
            {
                let before = self.snapshot();
                let r = self.s.close(who, l.id);
                self.account(i, before, &r);
            }
            return;
        }
        let Some((c, served)) = l.posted.clone() else {
            return;
        };
        if l.delivered {
            return;
        }
        match served {
            Served::Bytes(b) => {
                if l.job.is_some() && b != l.truth {
                    prove(self, 3);
                    return;
                }
                self.leases[i].delivered = true;
                self.accept(i, who, attentive);
            }
            Served::Malformed(..) | Served::Nothing => {
                // A tree with garbage padding is proven malformed in one transaction. Where that
                // proof does not apply (a one-leaf size under a deeper tree opens nothing), the
                // data cannot be verified against the root, so it is challenged like withheld data.
                if matches!(served, Served::Malformed(..)) {
                    prove(self, 4);
                    if self.leases[i].ended {
                        return;
                    }
                }
                // Cannot download: challenge every chunk, use what is revealed.
                for chunk in 0..c.leaves() {
                    if self.leases[i].revealed.contains_key(&chunk) {
                        continue;
                    }
                    let _ = self.s.challenge(who, l.id, c, chunk);
                }
                let got: Vec<u8> = self.leases[i]
                    .revealed
                    .values()
                    .flatten()
                    .copied()
                    .collect();
                if self.leases[i].revealed.len() as u64 == c.leaves() && Commitment::of(&got) == c {
                    self.leases[i].delivered = got == l.truth || l.job.is_none();
                    if self.leases[i].delivered {
                        self.accept(i, who, attentive);
                    } else {
                        prove(self, 3);
                    }
                }
            }
        }
    }

    /// The attentive tenant accepts a result it verified (`submit --wait --accept`): it pays at
    /// once, and the result's faults stay provable for the hold.
    pub(super) fn accept(&mut self, i: usize, who: Address, attentive: bool) {
        if attentive {
            let before = self.snapshot();
            let r = self.s.close(who, self.leases[i].id);
            self.account(i, before, &r);
        }
    }
}

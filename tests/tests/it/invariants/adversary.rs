//! The adversary's moves (posting, answering, forging, proving for a fee) and the bookkeeping
//! of what each step paid whom.

use super::*;

impl World {
    pub(super) fn adv_post(&mut self, i: usize, post: Post) {
        let l = self.leases[i].clone();
        if l.kind == Kind::Service || l.posted.is_some() {
            return;
        }
        let (c, served) = match post {
            Post::Correct => (Commitment::of(&l.truth), Served::Bytes(l.truth.clone())),
            Post::Wrong => {
                let mut bad = l.truth.clone();
                if bad.is_empty() {
                    bad.push(1);
                } else {
                    bad[0] ^= 0x40;
                }
                (Commitment::of(&bad), Served::Bytes(bad))
            }
            Post::Withheld => (Commitment::of(&l.truth), Served::Nothing),
            Post::Random => (
                Commitment {
                    root: B256::repeat_byte(0xa5),
                    size: l.truth.len() as u64,
                },
                Served::Nothing,
            ),
            Post::Malformed => {
                let size = l.truth.len().max(1);
                let leaves_n = size.div_ceil(RESULT_LEAF_BYTES);
                let mut leaves: Vec<B256> = (0..leaves_n as u64)
                    .map(|x| leaf_hash(result_chunk(&l.truth, x)))
                    .collect();
                let garbage = leaves.len() as u64;
                leaves.push(B256::repeat_byte(0x66));
                let t = MerkleTree::from_leaf_hashes(leaves);
                (
                    Commitment {
                        root: t.root(),
                        size: size as u64,
                    },
                    Served::Malformed(t, garbage),
                )
            }
        };
        if self.s.post_commitment(ADV_PROVIDER, l.id, c).success {
            self.leases[i].posted = Some((c, served));
        }
    }

    /// Provider `by` answers the challenge of `chunk` of lease `i` if it has the data: its true
    /// result under the true root, or the true chunks under a tree with garbage padding. Returns
    /// whether an answer landed.
    pub(super) fn answer(&mut self, i: usize, chunk: u64, by: usize) -> bool {
        let l = self.leases[i].clone();
        let Some((c, served)) = &l.posted else {
            return false;
        };
        let op = self.s.operator(by);
        let r = match served {
            Served::Bytes(b) if chunk < c.leaves() => self.s.answer(op, l.id, b, chunk),
            Served::Nothing if chunk < c.leaves() && *c == Commitment::of(&l.truth) => {
                self.s.answer(op, l.id, &l.truth, chunk)
            }
            Served::Malformed(t, garbage) if chunk < *garbage => self.s.chain.send(
                op,
                self.s.results,
                Results::answerCall {
                    leaseId: l.id,
                    root: c.root,
                    size: c.size,
                    index: U256::from(chunk),
                    chunk: result_chunk(&l.truth, chunk).to_vec().into(),
                    proof: t.proof(chunk),
                },
            ),
            _ => return false,
        };
        self.record_reveals(i, &r);
        r.success
    }

    /// The adversary answers the challenge of `chunk` of lease `i` with bytes it makes up, of
    /// the chunk's length, under a made-up proof of the tree's depth.
    pub(super) fn forge_answer(&mut self, i: usize, chunk: u64) {
        let l = self.leases[i].clone();
        let Some((c, _)) = &l.posted else { return };
        if chunk >= c.leaves() {
            return;
        }
        let len = (c.size - (chunk * RESULT_LEAF_BYTES as u64).min(c.size))
            .min(RESULT_LEAF_BYTES as u64) as usize;
        let depth = c.leaves().next_power_of_two().trailing_zeros() as usize;
        let op = self.s.operator(ADV_PROVIDER);
        let r = self.s.chain.send(
            op,
            self.s.results,
            Results::answerCall {
                leaseId: l.id,
                root: c.root,
                size: c.size,
                index: U256::from(chunk),
                chunk: vec![0x5a; len].into(),
                proof: vec![B256::repeat_byte(0x17); depth],
            },
        );
        self.record_reveals(i, &r);
    }

    /// What watchers learn from answers: the chunks revealed on chain, as the events carry them.
    pub(super) fn record_reveals(&mut self, i: usize, r: &Receipt) {
        if !r.success {
            return;
        }
        for e in r.events::<Results::ChunkRevealed>() {
            if e.leaseId == self.leases[i].id {
                self.leases[i]
                    .revealed
                    .insert(e.index.to(), e.chunk.to_vec());
            }
        }
    }

    /// The proof transactions (calldata to `Results`) that fault `which` of lease `i` would take,
    /// as far as the world's data allows: 0 no-show, 1 missed deadline, 2 stale heartbeat (its
    /// report first), 3 wrong product, 4 malformed tree, 5 unavailable chunk (one per index).
    pub(super) fn proof_calls(&self, i: usize, which: u8) -> Vec<Bytes> {
        let l = &self.leases[i];
        let tenant = self.s.tenant(l.tenant);
        let id = l.id;
        match which % 6 {
            0 => vec![
                Results::proveNoShowCall {
                    leaseId: id,
                    tenant,
                    terms: l.params.clone().into(),
                }
                .abi_encode()
                .into(),
            ],
            1 => vec![
                Results::proveMissedDeadlineCall { leaseId: id }
                    .abi_encode()
                    .into(),
            ],
            2 => vec![
                Results::reportStaleCall { leaseId: id }.abi_encode().into(),
                Results::proveStaleHeartbeatCall { leaseId: id }
                    .abi_encode()
                    .into(),
            ],
            3 => match (&l.posted, &l.job) {
                (Some((c, Served::Bytes(b))), Some(job)) => {
                    let cvals: Vec<i32> = b
                        .chunks_exact(4)
                        .map(|x| i32::from_be_bytes([x[0], x[1], x[2], x[3]]))
                        .collect();
                    match (cvals.len() == 24 * 16)
                        .then(|| localize(job, &cvals, B256::repeat_byte(3)))
                        .flatten()
                    {
                        Some(f) => vec![
                            Results::proveMatmulFraudCall {
                                leaseId: id,
                                tenant,
                                terms: l.params.clone().into(),
                                job: Job {
                                    seed: job.seed,
                                    m: job.m,
                                    k: job.k,
                                    n: job.n,
                                },
                                root: c.root,
                                size: c.size,
                                i: U256::from(f.i),
                                j: U256::from(f.j),
                                leaf: f.leaf.into(),
                                proof: f.proof,
                            }
                            .abi_encode()
                            .into(),
                        ],
                        None => vec![],
                    }
                }
                _ => vec![],
            },
            4 => match &l.posted {
                Some((c, Served::Malformed(t, index))) => vec![
                    Results::proveMalformedCall {
                        leaseId: id,
                        root: c.root,
                        size: c.size,
                        level: U256::ZERO,
                        index: U256::from(*index),
                        data: t.node(0, *index).to_vec().into(),
                        proof: t.proof(*index),
                    }
                    .abi_encode()
                    .into(),
                ],
                _ => vec![],
            },
            _ => match &l.posted {
                Some((c, _)) => (0..c.leaves())
                    .map(|index| {
                        Results::proveUnavailableCall {
                            leaseId: id,
                            index: U256::from(index),
                        }
                        .abi_encode()
                        .into()
                    })
                    .collect(),
                None => vec![],
            },
        }
    }

    /// Send fault `which` of lease `i` from `from`, whatever it pays (a tenant proving its own
    /// lease, or the adversary).
    pub(super) fn prove(&mut self, i: usize, which: u8, from: Address) {
        let (results, id) = (self.s.results, self.leases[i].id);
        for data in self.proof_calls(i, which) {
            // Simulated first only to spare the test a snapshot per failing try.
            let sim = self.s.chain.simulate_raw(from, results, data.clone());
            if !sim.success {
                continue;
            }
            if sim
                .events::<Market::LeaseFaulted>()
                .iter()
                .any(|e| e.leaseId == id)
            {
                let before = self.snapshot();
                let r = self.s.chain.send_raw(from, results, data);
                self.account(i, before, &r.expect_success());
                return;
            }
            self.s.chain.send_raw(from, results, data).expect_success();
        }
    }

    /// The honest keeper's way: simulate each proof and send it only if it would pay the keeper a
    /// fee (as a keeper daemon prices every transaction). A stale report is sent when the proof
    /// after it would be the keeper's to make.
    pub(super) fn keeper_prove(&mut self, i: usize, which: u8) {
        let k = self.s.keeper.address;
        self.prove_for_fee(i, which, k);
    }

    /// Prove fault `which` of lease `i` from `k` only if the simulation shows `k` earns its fee.
    pub(super) fn prove_for_fee(&mut self, i: usize, which: u8, k: Address) {
        let (results, id) = (self.s.results, self.leases[i].id);
        for data in self.proof_calls(i, which) {
            let sim = self.s.chain.simulate_raw(k, results, data.clone());
            if !sim.success {
                continue;
            }
            let faults = sim.events::<Market::LeaseFaulted>();
            if faults.is_empty() {
                // A stale report: free to send, and the proof needs it.
                self.s.chain.send_raw(k, results, data).expect_success();
                continue;
            }
            if faults.iter().any(|e| e.leaseId == id && e.reporter == k) {
                let before = self.snapshot();
                let r = self.s.chain.send_raw(k, results, data);
                self.account(i, before, &r.expect_success());
            }
            return;
        }
    }

    /// What every account of the world holds (tokens, market and staking credits), to measure
    /// what a transaction moved.
    /// What every account holds (tokens and credits), in `accounts` order, then the market's
    /// protocol fees.
    pub(super) fn snapshot(&mut self) -> Vec<u128> {
        let token = self.s.token;
        let mut out: Vec<u128> = self
            .accounts
            .clone()
            .iter()
            .map(|&a| self.s.balance(token, a) + self.s.credit(a) + self.s.staking_credit(a))
            .collect();
        out.push(self.protocol_fees());
        out
    }

    /// Record what receipt `r` (sent after `before` was taken) moved back to lease `i`'s tenant,
    /// what it paid a third-party reporter out of that, and whether the lease ended.
    pub(super) fn account(&mut self, i: usize, before: Vec<u128>, r: &Receipt) {
        if !r.success {
            return;
        }
        let after = self.snapshot();
        let delta = |a: Address, w: &Self| {
            let k = w
                .accounts
                .iter()
                .position(|&x| x == a)
                .expect("a world account");
            after[k] as i128 - before[k] as i128
        };
        let (id, tenant) = (self.leases[i].id, self.s.tenant(self.leases[i].tenant));
        self.leases[i].tenant_net -= delta(tenant, self);
        if HONEST_TENANTS.contains(&self.leases[i].tenant)
            && self.leases[i].provider == Some(ADV_PROVIDER)
        {
            self.adv_paid_honest += delta(self.s.provider(ADV_PROVIDER), self).max(0) as u128;
        }
        for e in r.events::<Market::LeaseFaulted>() {
            if e.leaseId == id && e.reporter != Address::ZERO && e.reporter != tenant {
                self.leases[i].fees_paid += delta(e.reporter, self);
            }
        }
        self.check_fees(i, &before, &after, r);
        if r.events::<Market::LeaseClosed>()
            .iter()
            .any(|e| e.leaseId == id)
            || r.events::<Market::LeaseFaulted>()
                .iter()
                .any(|e| e.leaseId == id)
        {
            self.leases[i].ended = true;
        }
    }

    /// Keeper economics (INV-08), measured on what every account gained in `r` (`before` and
    /// `after` are [`Self::snapshot`]s), not on the events' word: when no fault ended lease `i`,
    /// every account other than its tenant and provider is paid as a keeper, and together they
    /// gain at most `keeperFeeBps` of everything the lease paid out (to the provider, the protocol
    /// and them); when a third party proved a fault, it gains at most `faultFeeBps` of what the
    /// fault returned to the tenant, its fee included.
    fn check_fees(&mut self, i: usize, before: &[u128], after: &[u128], r: &Receipt) {
        let gain = |k: usize| after[k] as i128 - before[k] as i128;
        let l = &self.leases[i];
        let tenant = self.s.tenant(l.tenant);
        let provider = l.provider.map(|p| self.s.provider(p));
        let at = |a: Address| self.accounts.iter().position(|&x| x == a);
        let fault = r
            .events::<Market::LeaseFaulted>()
            .into_iter()
            .find(|e| e.leaseId == l.id);
        match fault {
            None => {
                let (mut keepers, mut paid) = (0i128, gain(self.accounts.len()));
                for (k, &a) in self.accounts.iter().enumerate() {
                    if a == tenant {
                        continue;
                    }
                    paid += gain(k);
                    if Some(a) != provider {
                        keepers += gain(k);
                    }
                }
                let bps = i128::from(l.keeper_bps);
                assert!(
                    keepers * 10_000 <= paid * bps,
                    "INV-08: keepers gained {keepers} of the {paid} lease {} paid out ({bps} bps)",
                    l.id
                );
            }
            Some(f) if f.reporter != Address::ZERO && f.reporter != tenant => {
                let (Some(rk), Some(tk)) = (at(f.reporter), at(tenant)) else {
                    return;
                };
                let (fee, back) = (gain(rk), gain(tk));
                let bps = i128::from(FAULT_FEE_BPS);
                assert!(
                    fee * 10_000 <= (back + fee) * bps,
                    "INV-08: reporter {} gained {fee} of the {} a fault of lease {} returned ({bps} bps)",
                    f.reporter,
                    back + fee,
                    l.id
                );
            }
            Some(_) => {}
        }
    }

    /// Keeper fees the adversary's keeper earned in `r` on an honest tenant's lease `i`.
    pub(super) fn count_fee(&mut self, i: usize, r: &Receipt) {
        if !r.success || !HONEST_TENANTS.contains(&self.leases[i].tenant) {
            return;
        }
        let kfee = u128::from(self.s.job(self.leases[i].id).keeperFeeBps);
        for e in r.events::<Market::LeaseSettled>() {
            self.adv_fees += e.amount.to::<u128>() * kfee / 10_000;
        }
        for e in r.events::<Market::LeaseClosed>() {
            self.adv_fees += e.keeperFee.to::<u128>();
        }
    }

    /// The adversary's standing reactions (`Play`), at every tick.
    pub(super) fn adversary_reacts(&mut self) {
        for i in 0..self.leases.len() {
            let l = self.leases[i].clone();
            if l.ended || l.provider.is_none() {
                continue;
            }
            if l.provider == Some(ADV_PROVIDER)
                && self.play.answers != Answers::Never
                && let Some((c, _)) = &l.posted
            {
                for chunk in 0..c.leaves() {
                    let open = self.s.chain.view(
                        self.s.results,
                        Results::challengeOfCall {
                            leaseId: l.id,
                            index: U256::from(chunk),
                        },
                    );
                    if open.challenger != Address::ZERO
                        && !self.answer(i, chunk, ADV_PROVIDER)
                        && self.play.answers == Answers::Forging
                    {
                        self.forge_answer(i, chunk);
                    }
                }
            }
            let reporter = self.s.tenant(2);
            for which in 0..6 {
                if self.leases[i].ended {
                    break;
                }
                match self.play.reporter {
                    Reporter::Idle => {}
                    Reporter::FeeRacer => self.prove_for_fee(i, which, reporter),
                    Reporter::Griefer => self.prove(i, which, reporter),
                }
            }
        }
    }
}

//! Stateful property tests against an adversary (SECURITY K, DESIGN 4.5). A model that re-encodes
//! the contracts' rules passes the contracts' design flaws (v1's escapable faults got through 300
//! cases of one), so this suite states its properties on their own terms and lets a randomized
//! adversary try to break them:
//!
//! - the **adversary** is provider 0 (its owner's stake and its operator key), its own tenant
//!   account and its own reporter/keeper account. It bids on anything, acknowledges or not, posts
//!   correct, wrong, withheld, random or malformed results, answers challenges or not (with the
//!   data, or with forged chunks and proofs), abandons, closes, accepts, challenges, proves,
//!   settles, releases and withdraws at random; per case it also picks standing reactions
//!   (`Play`): how its node answers challenges, and whether its reporter races the keeper to
//!   every fault the moment a fee is due; and the case's token: USDC's 6 decimals, or 2 (a
//!   quarter of the cases: units are cents, and settlements carry their remainders, TOK-08);
//! - the **attentive tenant** (tenant 0) orders container, built-in and service jobs, verifies
//!   every result it gets (it knows the true product), challenges what it cannot download,
//!   proves every fault it sees itself (within its priority, so for free), accepts what it
//!   verified and closes lapsed service leases;
//! - the **sleepy tenant** (tenant 1) orders and walks away: the honest keeper watches its leases
//!   (and the adversary's own) every `KEEPER_POLL` seconds, doing the same checks but proving a
//!   fault only once the simulation shows it earns the fee, and closing what is due;
//! - **honest providers** (1 and 2) beat on time while they may be needed, acknowledge, post the
//!   true result well before the deadline and answer every challenge.
//!
//! After every step:
//! - **fair award** (AFR-02): no bid is placed after its window, and an award, whoever sends it,
//!   goes to the lowest bid placed in the window (the adversary signs late, undercuts, awards);
//! - **paid for delivery**: an honest tenant's batch lease never paid anything (beyond a finder's
//!   fee to whoever proved a fault it did not see in time) without a result it verified; a
//!   service lease paid at most the rate times its provider's live time; the attentive tenant
//!   never pays a finder's fee;
//! - **no stake without fault**: an honest provider's stake never falls;
//! - **conservation**: the market holds exactly the escrow of every order and lease, every credit
//!   and the protocol fees; staking holds its stake, unbonding stake and credits; the results
//!   module holds exactly the open challenges' bonds and its wei credits;
//! - **books** (STK-01, INV-02, INV-04, INV-06): every token the suite minted is held by an
//!   account or a contract of the protocol (none leaves to an address nobody controls); staking's
//!   totals are the sums of its providers' records and no provider's locked collateral exceeds its
//!   stake; an order moves only along the lifecycle (None -> Open -> Leased or Cancelled; Leased
//!   -> Closed or Faulted; a held Closed record -> Faulted or released), terminal states never
//!   change, and a running lease's provider, tenant, rate and collateral never change;
//! - **per-lease bounds** (INV-03), for every lease, the adversary's tenant's included: the tenant
//!   never lost more to it than it deposited into it, and what it paid (beyond finder's fees, less
//!   what is still in escrow) never exceeds the rate times the time since its start;
//! - **keeper economics** (INV-08), measured around every payment: whoever closes or settles a
//!   lease (not its tenant nor its provider) gains at most `keeperFeeBps` of what the lease paid
//!   out, and a third-party reporter gains at most `faultFeeBps` of what a fault returned to the
//!   tenant (its own fee included);
//! - **no profit for the adversary**: what it holds (tokens, credits, stake, its tenant's parked
//!   escrow) never rises, from one step to the next, by more than what honest tenants paid its
//!   provider and the keeper fees it earned on their leases: every fee a fault pays it must cost
//!   it at least as much in slashed stake, and a gain cannot hide behind earlier losses.
//!
//! At the end of a case, past every window: every lease was resolved, releasing held records
//! frees every honest provider's collateral, and once every account takes what it is owed the
//! market holds only its fees, staking only stake and the results module no wei (INV-07).
//!
//! Cases: 128 by default; set `PROPTEST_CASES` for more (e.g. 1000 before a release). Failing seeds
//! are kept in `tests/proptest-regressions/invariants.txt` (committed). Each property was checked
//! to fail against a contract with the matching rule removed (see `docs/protocol.md`, §10).

use std::collections::BTreeMap;

use alloy::{
    primitives::{Address, B256, Bytes, U256, aliases::U96},
    sol_types::SolCall,
};
use gridlease_bindings::{
    IMarket::OrderParams, Market, MarketAdmin, MarketLens, MockStablecoin, Results, Staking,
    results::MatmulProof::Job,
};
use gridlease_tests::{evm::Receipt, fixture::*};
use gridlease_workload::{
    matmul::{Matmul, encode, localize, multiply},
    merkle::{Commitment, MerkleTree, RESULT_LEAF_BYTES, leaf_hash, result_chunk},
};
use proptest::{prelude::*, test_runner::FileFailurePersistence};

mod adversary;
mod checks;
mod honest;
mod world;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/invariants.txt"
        )))),
        ..ProptestConfig::default()
    }
}

/// The adversary's provider, tenant and reporter.
const ADV_PROVIDER: usize = 0;
const ADV_TENANT: usize = 3;
const HONEST_TENANTS: [usize; 2] = [ATTENTIVE_TENANT, SLEEPY_TENANT];
/// Watches its leases and proves every fault itself, inside its priority (so for free).
const ATTENTIVE_TENANT: usize = 0;
/// Orders and walks away: only the honest keeper watches its leases, and only every
/// `KEEPER_POLL` seconds, and proves a fault only once the fee pays it.
const SLEEPY_TENANT: usize = 1;
const KEEPER_POLL: u64 = 1_800;
const HONEST_PROVIDERS: [usize; 2] = [1, 2];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Container,
    Builtin,
    Service,
}

/// What the adversary posts.
#[derive(Clone, Copy, Debug)]
enum Post {
    Correct,
    /// A wrong product (built-in) or other bytes (container), served.
    Wrong,
    /// The true result's commitment, its data never served.
    Withheld,
    /// A root nobody can open.
    Random,
    /// A tree with garbage in its padding.
    Malformed,
}

#[derive(Clone, Debug)]
enum Action {
    Order {
        tenant: usize,
        kind: Kind,
        instant: bool,
        collateral: u8,
    },
    Bid {
        provider: usize,
        order: u8,
        under: u8,
    },
    Award {
        order: u8,
    },
    /// Provider `provider` signs a bid on any open order, in its window or past it (a late
    /// signature), and the adversary's reporter places it (`bidSigned`).
    SignedBid {
        provider: usize,
        order: u8,
        under: u8,
    },
    /// The adversary goes for an open order: bids at the reserve price and, if that starts the
    /// lease (instant), posts `post` at once.
    AdvTake {
        order: u8,
        post: Option<Post>,
    },
    AdvAck {
        lease: u8,
    },
    AdvPost {
        lease: u8,
        post: Post,
    },
    /// Answer a challenge: with the data if the adversary has it, else (or if `forge`) with
    /// bytes of the right length and a made-up proof.
    AdvAnswer {
        lease: u8,
        chunk: u8,
        forge: bool,
    },
    AdvBeat,
    AdvAbandon {
        lease: u8,
    },
    AdvClose {
        lease: u8,
    },
    AdvTenantClose {
        lease: u8,
    },
    AdvChallenge {
        lease: u8,
        chunk: u8,
    },
    AdvProve {
        lease: u8,
        which: u8,
    },
    AdvCloseAny {
        lease: u8,
    },
    AdvSettle {
        lease: u8,
    },
    AdvRelease {
        lease: u8,
    },
    TopUp {
        lease: u8,
    },
    Withdraw {
        who: u8,
    },
    Warp {
        secs: u16,
    },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Container),
        Just(Kind::Builtin),
        Just(Kind::Service)
    ]
}

fn post() -> impl Strategy<Value = Post> {
    prop_oneof![
        Just(Post::Correct),
        Just(Post::Wrong),
        Just(Post::Withheld),
        Just(Post::Random),
        Just(Post::Malformed),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => (prop_oneof![2 => Just(0usize), 2 => Just(1), 1 => Just(ADV_TENANT)], kind(), prop::bool::weighted(0.7), 0u8..4)
            .prop_map(|(tenant, kind, instant, collateral)| Action::Order { tenant, kind, instant, collateral }),
        // The adversary bids as often as both honest providers together.
        4 => (prop_oneof![2 => Just(0usize), 1 => Just(1), 1 => Just(2)], any::<u8>(), 0u8..4)
            .prop_map(|(provider, order, under)| Action::Bid { provider, order, under }),
        2 => any::<u8>().prop_map(|order| Action::Award { order }),
        2 => (prop_oneof![2 => Just(0usize), 1 => Just(1), 1 => Just(2)], any::<u8>(), 0u8..5)
            .prop_map(|(provider, order, under)| Action::SignedBid { provider, order, under }),
        6 => (any::<u8>(), prop::option::weighted(0.7, post())).prop_map(|(order, post)| Action::AdvTake { order, post }),
        2 => any::<u8>().prop_map(|lease| Action::AdvAck { lease }),
        3 => (any::<u8>(), post()).prop_map(|(lease, post)| Action::AdvPost { lease, post }),
        3 => (any::<u8>(), 0u8..4, any::<bool>()).prop_map(|(lease, chunk, forge)| Action::AdvAnswer { lease, chunk, forge }),
        2 => Just(Action::AdvBeat),
        1 => any::<u8>().prop_map(|lease| Action::AdvAbandon { lease }),
        2 => any::<u8>().prop_map(|lease| Action::AdvClose { lease }),
        1 => any::<u8>().prop_map(|lease| Action::AdvTenantClose { lease }),
        1 => (any::<u8>(), 0u8..4).prop_map(|(lease, chunk)| Action::AdvChallenge { lease, chunk }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(lease, which)| Action::AdvProve { lease, which }),
        1 => any::<u8>().prop_map(|lease| Action::AdvCloseAny { lease }),
        1 => any::<u8>().prop_map(|lease| Action::AdvSettle { lease }),
        1 => any::<u8>().prop_map(|lease| Action::AdvRelease { lease }),
        1 => any::<u8>().prop_map(|lease| Action::TopUp { lease }),
        1 => any::<u8>().prop_map(|who| Action::Withdraw { who }),
        4 => (1u16..2_500).prop_map(|secs| Action::Warp { secs }),
    ]
}

/// How the adversary plays through a whole case (its moves come from the actions; these are its
/// standing reactions, run at every tick like a daemon's).
#[derive(Clone, Copy, Debug)]
struct Play {
    /// How its node answers challenges of its results.
    answers: Answers,
    /// What its reporter does at every tick, on every lease.
    reporter: Reporter,
    /// Decimals of the payment and stake token: 6 (USDC), or 2 (its units are cents, and a
    /// settlement's remainder is carried to the next, TOK-08).
    decimals: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reporter {
    /// Only what the actions make it do.
    Idle,
    /// Proves any fault the moment a fee is due, racing the honest keeper (which looks at each
    /// lease only every `KEEPER_POLL`).
    FeeRacer,
    /// Proves (and reports) anything it can, at once, fee or not: it wants honest providers
    /// slashed, whatever it costs.
    Griefer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answers {
    Never,
    /// With the data where it has it.
    Truthful,
    /// With the data where it has it, with made-up bytes and proofs where it does not.
    Forging,
}

fn play() -> impl Strategy<Value = Play> {
    (
        prop_oneof![
            Just(Answers::Never),
            Just(Answers::Truthful),
            Just(Answers::Forging)
        ],
        prop_oneof![
            Just(Reporter::Idle),
            Just(Reporter::FeeRacer),
            Just(Reporter::Griefer)
        ],
        prop_oneof![3 => Just(6u8), 1 => Just(2u8)],
    )
        .prop_map(|(answers, reporter, decimals)| Play {
            answers,
            reporter,
            decimals,
        })
}

/// What the provider serves of its posted result.
#[derive(Clone, Debug)]
enum Served {
    Bytes(Vec<u8>),
    Nothing,
    Malformed(MerkleTree, u64),
}

#[derive(Clone, Debug)]
struct Lease {
    id: B256,
    params: OrderParams,
    tenant: usize,
    provider: Option<usize>,
    kind: Kind,
    job: Option<Matmul>,
    /// The true output.
    truth: Vec<u8>,
    posted: Option<(Commitment, Served)>,
    /// Chunks revealed on chain by answers.
    revealed: BTreeMap<u64, Vec<u8>>,
    /// The honest tenant verified the whole result.
    delivered: bool,
    /// When it was ordered.
    ordered: u64,
    /// What the tenant paid third-party reporters out of its refunds (finder's fees).
    fees_paid: i128,
    /// When the honest keeper next looks at it (leases of the sleepy tenant).
    keeper_next: u64,
    start: u64,
    /// Its price, 18-decimal units a second.
    price: u128,
    /// Net tokens the tenant put in (deposits and top-ups minus refunds, credits and
    /// compensation).
    tenant_net: i128,
    /// What the tenant deposited into it: the order's deposit and every top-up (INV-03).
    deposited: u128,
    /// Its keeper fee, bps, as it started (a record is cleared when it ends).
    keeper_bps: u16,
    ended: bool,
    /// The lowest auction bid placed while the window was open, on chain or signed: (provider,
    /// price). Whoever awards, it is the one that must win (AFR-02).
    best_bid: Option<(usize, u128)>,
}

struct World {
    s: Suite,
    leases: Vec<Lease>,
    orders: Vec<usize>,
    /// Heartbeat times of each provider.
    beats: BTreeMap<usize, Vec<u64>>,
    adv_start: u128,
    /// Keeper fees the adversary earned on honest tenants' leases.
    adv_fees: u128,
    /// What the adversary's provider was paid out of honest tenants' leases.
    adv_paid_honest: u128,
    /// The adversary's holdings above what it earned honestly, after the last step.
    adv_excess: i128,
    honest_stake: BTreeMap<usize, u128>,
    accounts: Vec<Address>,
    play: Play,
    /// Each order's status, whether it was a held record, and its lease's fixed terms (provider,
    /// tenant, rate, collateral) as last seen.
    seen: BTreeMap<B256, Seen>,
    /// Tokens held outside the accounts and contracts that act, as first seen.
    outside: Option<u128>,
}

/// What [`World::check_books`] saw of an order or lease after the last step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    status: u8,
    held: bool,
    terms: (Address, Address, U96, U96),
}

fn matmul(n: u32) -> Matmul {
    Matmul {
        seed: B256::from(U256::from(n)),
        m: 24,
        k: 8,
        n: 16,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn an_adversary_cannot_break_the_safety_properties(play in play(), actions in prop::collection::vec(action(), 10..100)) {
        let mut w = World::new(play);
        for a in &actions {
            w.step(a);
            w.check(a);
        }
        // Past every window, the honest side collects what is due, and the properties still hold.
        for _ in 0..12 {
            w.step(&Action::Warp { secs: 2_400 });
        }
        w.s.chain.warp(CHALLENGE_WINDOW + RESPONSE_WINDOW + 1);
        // Two keeper polls: everything still open is now the keeper's to close or prove.
        w.step(&Action::Warp { secs: 2 * KEEPER_POLL as u16 + 1 });
        let end = Action::Warp { secs: 0 };
        w.check(&end);
        w.check_resolved();
    }
}

/// v1's escapes, played deterministically through the same world and checks (the random suite
/// reaches them too, less often): a provider closing its lease before the result, a third party's
/// expiry close, a root nobody can open, a withheld result, a malformed tree, a wrong product.
#[test]
fn the_v1_escapes_are_played_and_none_gets_through() {
    let plays: Vec<Vec<Action>> = vec![
        vec![
            Action::Order {
                tenant: 0,
                kind: Kind::Container,
                instant: true,
                collateral: 1,
            },
            Action::Bid {
                provider: 0,
                order: 0,
                under: 0,
            },
            Action::Warp { secs: 2_000 },
            Action::AdvClose { lease: 0 },
            Action::AdvAbandon { lease: 0 },
        ],
        vec![
            Action::Order {
                tenant: 1,
                kind: Kind::Builtin,
                instant: true,
                collateral: 0,
            },
            Action::Bid {
                provider: 0,
                order: 0,
                under: 1,
            },
            Action::Warp { secs: 2_500 },
            Action::Warp { secs: 1_200 },
            Action::AdvCloseAny { lease: 0 },
        ],
        vec![
            Action::Order {
                tenant: 0,
                kind: Kind::Container,
                instant: true,
                collateral: 2,
            },
            Action::Bid {
                provider: 0,
                order: 0,
                under: 0,
            },
            Action::Warp { secs: 100 },
            Action::AdvPost {
                lease: 0,
                post: Post::Random,
            },
            Action::Warp { secs: 2_000 },
        ],
        vec![
            Action::Order {
                tenant: 0,
                kind: Kind::Container,
                instant: true,
                collateral: 2,
            },
            Action::Bid {
                provider: 0,
                order: 0,
                under: 0,
            },
            Action::AdvPost {
                lease: 0,
                post: Post::Withheld,
            },
            Action::AdvAnswer {
                lease: 0,
                chunk: 0,
                forge: false,
            },
            Action::Warp { secs: 2_000 },
        ],
        vec![
            Action::Order {
                tenant: 1,
                kind: Kind::Builtin,
                instant: false,
                collateral: 1,
            },
            Action::Bid {
                provider: 0,
                order: 0,
                under: 0,
            },
            Action::Warp { secs: 301 },
            Action::Award { order: 0 },
            Action::AdvPost {
                lease: 0,
                post: Post::Wrong,
            },
            Action::Warp { secs: 100 },
        ],
        vec![
            Action::Order {
                tenant: 0,
                kind: Kind::Builtin,
                instant: true,
                collateral: 0,
            },
            Action::Bid {
                provider: 0,
                order: 0,
                under: 0,
            },
            Action::AdvPost {
                lease: 0,
                post: Post::Malformed,
            },
            Action::Warp { secs: 100 },
        ],
        // The provider's own reporter proves its missed deadline once the sleepy tenant's priority
        // is over, before the keeper's next look: the finder's fee (5% of a 5 USDC refund) is more
        // than the 0.1 USDC collateral, so it must be capped at the slash.
        vec![
            Action::Order {
                tenant: 1,
                kind: Kind::Container,
                instant: true,
                collateral: 3,
            },
            Action::Bid {
                provider: 0,
                order: 0,
                under: 0,
            },
            Action::Warp { secs: 7_600 },
            Action::AdvProve { lease: 0, which: 1 },
        ],
    ];
    for play in plays {
        let mut w = World::new(Play {
            answers: Answers::Never,
            reporter: Reporter::Idle,
            decimals: 6,
        });
        for a in &play {
            w.step(a);
            w.check(a);
        }
        for _ in 0..40 {
            w.step(&Action::Warp { secs: 2_400 });
        }
        w.check(&Action::Warp { secs: 0 });
        let l = &w.leases[0];
        assert!(l.ended, "{play:?}: the lease was resolved");
        assert!(
            l.tenant_net - l.fees_paid <= 0 || l.delivered,
            "{play:?}: cost {}",
            l.tenant_net
        );
    }
}

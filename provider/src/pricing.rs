//! Which orders the node bids on, and at what price: pure functions of the order's terms, the
//! provider's registered capacity, its free stake and GPUs, and the pricing policy.

use std::collections::BTreeMap;

use gridlease_primitives::{
    gpu,
    units::{parse_amount, rate_from_hourly_ceil},
};

use crate::config::Pricing;

/// The terms of an order that decide a bid (from its `OrderCreated` event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    /// GPU class index.
    pub gpu_class: u8,
    /// GPUs.
    pub gpu_count: u8,
    /// VRAM per GPU, GiB.
    pub vram_gib: u16,
    /// Job kind byte.
    pub job_kind: u8,
    /// CPU cores (0: none named).
    pub cpu_cores: u16,
    /// Memory, GiB (0: none named).
    pub ram_gib: u32,
    /// Reserve price, 18-decimal units per second.
    pub max_price: u128,
    /// Stake the lease locks.
    pub collateral: u128,
    /// Payment token decimals (`None`: a token this node does not know).
    pub token_decimals: Option<u8>,
}

/// What the node can offer right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Registered class bitmap (what `Market` checks).
    pub classes: u64,
    /// Registered GPU count.
    pub gpus: u8,
    /// Registered VRAM per GPU.
    pub vram_gib: u16,
    /// Whether each job holds its GPUs exclusively: the node has real or declared GPUs and
    /// `jobs.share_gpus` is off. Then an order is bid on only if enough GPUs are free.
    pub exclusive_gpus: bool,
    /// GPUs held by jobs that take a slot (their orders' GPU counts: bids, leases, running jobs).
    pub held_gpus: u32,
    /// Job slots not taken by bids, leases or running jobs.
    pub free_slots: u32,
    /// All job slots.
    pub slots: u32,
    /// Stake not locked by leases.
    pub free_stake: u128,
    /// Job kinds the executors run (bit per kind byte).
    pub kinds: u8,
    /// Lowest price the market accepts.
    pub min_price: u128,
    /// Most memory one job gets, GiB ([`crate::config::Config::job_ram_gib`], resolved).
    pub job_ram_gib: u32,
    /// Most CPU cores one job gets.
    pub job_cpu_cores: u16,
}

impl Offer {
    /// The cores and memory a lease asking `cores` and `ram_gib` runs with: what it asked (the bid
    /// held it to [`Self::job_cpu_cores`] and [`Self::job_ram_gib`]), or for 0 (nothing named)
    /// the most one job gets here, so no container runs without a limit.
    pub fn limits(&self, cores: u16, ram_gib: u32) -> (u16, u32) {
        (
            if cores == 0 {
                self.job_cpu_cores
            } else {
                cores
            },
            if ram_gib == 0 {
                self.job_ram_gib
            } else {
                ram_gib
            },
        )
    }
}

/// Why the node did not bid (a metric label each).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// The provider is not registered for this class.
    #[error("class {0} not offered")]
    Class(String),
    /// More GPUs or VRAM than registered.
    #[error("needs {need_gpus} GPU(s) x {need_vram} GiB, registered {gpus} x {vram} GiB")]
    Capacity {
        /// Asked.
        need_gpus: u8,
        /// Asked.
        need_vram: u16,
        /// Registered.
        gpus: u8,
        /// Registered.
        vram: u16,
    },
    /// More memory or cores than one job gets here (`jobs.max_ram_gib`, `jobs.max_cpu_cores`).
    #[error(
        "needs {need_ram} GiB and {need_cores} core(s), a job gets at most {ram} GiB and {cores}"
    )]
    Resources {
        /// Asked.
        need_ram: u32,
        /// Asked.
        need_cores: u16,
        /// Most one job gets.
        ram: u32,
        /// Most one job gets.
        cores: u16,
    },
    /// No executor runs this kind.
    #[error("job kind {0} not run here")]
    Kind(u8),
    /// All slots are taken.
    #[error("busy: {0} job slot(s) all taken")]
    Busy(u32),
    /// Fewer GPUs free than asked (the others are held by bids, leases or running jobs).
    #[error("needs {need} GPU(s), {free} free")]
    GpusBusy {
        /// Asked.
        need: u8,
        /// Registered and not held.
        free: u32,
    },
    /// Free stake below the order's collateral.
    #[error("free stake {free} below collateral {need}")]
    Stake {
        /// Free stake.
        free: u128,
        /// Collateral asked.
        need: u128,
    },
    /// The order pays less than the floor.
    #[error("our price {ask} is above the order's maximum {max}")]
    Price {
        /// Our price.
        ask: u128,
        /// Its reserve.
        max: u128,
    },
    /// No pricing for the class (nor `any`), or an unknown payment token.
    #[error("no price: {0}")]
    NoPrice(String),
}

impl Skip {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Class(_) => "class",
            Self::Capacity { .. } => "capacity",
            Self::Resources { .. } => "resources",
            Self::Kind(_) => "kind",
            Self::Busy(_) => "busy",
            Self::GpusBusy { .. } => "gpus_busy",
            Self::Stake { .. } => "stake",
            Self::Price { .. } => "price",
            Self::NoPrice(_) => "no_price",
        }
    }
}

/// Per-second price of `ask` under `pricing` at the node's current utilisation
/// (`busy` of `slots` taken): floor x GPUs, plus the markup scaled by utilisation, rounded up,
/// never below the market minimum.
pub fn price(
    ask: &Ask,
    pricing: &BTreeMap<String, Pricing>,
    busy: u32,
    slots: u32,
    min_price: u128,
) -> Result<u128, Skip> {
    let class = gpu::class_name(ask.gpu_class);
    let p = pricing
        .get(&class)
        .or_else(|| pricing.get("any"))
        .ok_or_else(|| Skip::NoPrice(format!("no [pricing.{class}] nor [pricing.any]")))?;
    let decimals = ask
        .token_decimals
        .ok_or_else(|| Skip::NoPrice("unknown payment token".into()))?;
    let floor_units = parse_amount(&p.floor_per_hour, decimals)
        .map_err(|e| Skip::NoPrice(format!("pricing.{class}.floor_per_hour: {e}")))?;
    let per_gpu = rate_from_hourly_ceil(floor_units, decimals)
        .ok_or_else(|| Skip::NoPrice("floor overflows".into()))?;
    let base = per_gpu.saturating_mul(u128::from(ask.gpu_count.max(1)));
    let util_bps = if slots == 0 {
        10_000
    } else {
        u128::from(busy.min(slots)) * 10_000 / u128::from(slots)
    };
    let markup = base.saturating_mul(u128::from(p.utilisation_markup_bps) * util_bps) / 100_000_000;
    Ok(base.saturating_add(markup).max(min_price))
}

/// Decide on `ask`: the price to bid, or why not.
pub fn evaluate(
    ask: &Ask,
    offer: &Offer,
    pricing: &BTreeMap<String, Pricing>,
) -> Result<u128, Skip> {
    if ask.gpu_class > 63 || (offer.classes >> ask.gpu_class) & 1 == 0 {
        return Err(Skip::Class(gpu::class_name(ask.gpu_class)));
    }
    if ask.gpu_count > offer.gpus || ask.vram_gib > offer.vram_gib {
        return Err(Skip::Capacity {
            need_gpus: ask.gpu_count,
            need_vram: ask.vram_gib,
            gpus: offer.gpus,
            vram: offer.vram_gib,
        });
    }
    if ask.ram_gib > offer.job_ram_gib || ask.cpu_cores > offer.job_cpu_cores {
        return Err(Skip::Resources {
            need_ram: ask.ram_gib,
            need_cores: ask.cpu_cores,
            ram: offer.job_ram_gib,
            cores: offer.job_cpu_cores,
        });
    }
    if ask.job_kind > 7 || (offer.kinds >> ask.job_kind) & 1 == 0 {
        return Err(Skip::Kind(ask.job_kind));
    }
    if offer.free_slots == 0 {
        return Err(Skip::Busy(offer.slots));
    }
    let free_gpus = u32::from(offer.gpus).saturating_sub(offer.held_gpus);
    if offer.exclusive_gpus && u32::from(ask.gpu_count) > free_gpus {
        return Err(Skip::GpusBusy {
            need: ask.gpu_count,
            free: free_gpus,
        });
    }
    if offer.free_stake < ask.collateral {
        return Err(Skip::Stake {
            free: offer.free_stake,
            need: ask.collateral,
        });
    }
    let busy = offer.slots - offer.free_slots;
    let p = price(ask, pricing, busy, offer.slots, offer.min_price)?;
    if p > ask.max_price {
        return Err(Skip::Price {
            ask: p,
            max: ask.max_price,
        });
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pricing() -> BTreeMap<String, Pricing> {
        let mut m = BTreeMap::new();
        m.insert(
            "any".to_owned(),
            Pricing {
                floor_per_hour: "0.36".into(),
                utilisation_markup_bps: 5_000,
            },
        );
        m.insert(
            "h100".to_owned(),
            Pricing {
                floor_per_hour: "3.60".into(),
                utilisation_markup_bps: 0,
            },
        );
        m
    }

    fn ask() -> Ask {
        Ask {
            gpu_class: 0,
            gpu_count: 1,
            vram_gib: 8,
            job_kind: 1,
            cpu_cores: 0,
            ram_gib: 0,
            max_price: 10u128.pow(18),
            collateral: 5_000_000,
            token_decimals: Some(6),
        }
    }

    fn offer() -> Offer {
        Offer {
            classes: 1 | 1 << 9,
            gpus: 2,
            vram_gib: 80,
            exclusive_gpus: true,
            held_gpus: 0,
            free_slots: 4,
            slots: 4,
            free_stake: 10_000_000,
            kinds: 0b011,
            min_price: 1,
            job_ram_gib: 16,
            job_cpu_cores: 4,
        }
    }

    #[test]
    fn price_is_floor_per_gpu_plus_utilisation_markup() {
        // 0.36 per hour = 0.0001 per second = 1e14 in 18-decimal units.
        let p = pricing();
        assert_eq!(price(&ask(), &p, 0, 4, 1), Ok(100_000_000_000_000));
        // Half busy, 50 % markup at full: +25 %.
        assert_eq!(price(&ask(), &p, 2, 4, 1), Ok(125_000_000_000_000));
        assert_eq!(price(&ask(), &p, 4, 4, 1), Ok(150_000_000_000_000));
        // Per GPU, and the class's own policy.
        let h = Ask {
            gpu_class: 9,
            gpu_count: 2,
            ..ask()
        };
        assert_eq!(price(&h, &p, 4, 4, 1), Ok(2_000_000_000_000_000));
        // Never below the market minimum.
        assert_eq!(price(&ask(), &p, 0, 4, 10u128.pow(15)), Ok(10u128.pow(15)));
        let unknown = Ask {
            token_decimals: None,
            ..ask()
        };
        assert_eq!(
            price(&unknown, &p, 0, 4, 1).map_err(|e| e.label()),
            Err("no_price")
        );
    }

    #[test]
    fn a_job_that_names_no_memory_or_cores_gets_the_most_one_job_gets_not_unbounded() {
        let o = offer();
        assert_eq!(o.limits(0, 0), (4, 16));
        assert_eq!(o.limits(2, 3), (2, 3));
        assert_eq!(o.limits(0, 8), (4, 8));
    }

    #[test]
    fn only_orders_that_fit_every_limit_get_a_bid() {
        let p = pricing();
        assert!(evaluate(&ask(), &offer(), &p).is_ok());
        // Up to what one job gets here.
        let whole = Ask {
            ram_gib: 16,
            cpu_cores: 4,
            ..ask()
        };
        assert!(evaluate(&whole, &offer(), &p).is_ok());
        let cases: [(Ask, Offer, &str); 9] = [
            (
                Ask {
                    gpu_class: 5,
                    ..ask()
                },
                offer(),
                "class",
            ),
            (
                Ask {
                    ram_gib: 17,
                    ..ask()
                },
                offer(),
                "resources",
            ),
            (
                Ask {
                    cpu_cores: 5,
                    ..ask()
                },
                offer(),
                "resources",
            ),
            (
                Ask {
                    gpu_count: 3,
                    ..ask()
                },
                offer(),
                "capacity",
            ),
            (
                Ask {
                    vram_gib: 81,
                    ..ask()
                },
                offer(),
                "capacity",
            ),
            (
                Ask {
                    job_kind: 2,
                    ..ask()
                },
                offer(),
                "kind",
            ),
            (
                ask(),
                Offer {
                    free_slots: 0,
                    ..offer()
                },
                "busy",
            ),
            (
                Ask {
                    collateral: 10_000_001,
                    ..ask()
                },
                offer(),
                "stake",
            ),
            (
                Ask {
                    max_price: 99_999_999_999_999,
                    ..ask()
                },
                offer(),
                "price",
            ),
        ];
        for (a, o, label) in cases {
            assert_eq!(
                evaluate(&a, &o, &p).map_err(|e| e.label()),
                Err(label),
                "{a:?}"
            );
        }
        // Exactly at the limits is fine.
        let edge = Ask {
            gpu_count: 2,
            vram_gib: 80,
            collateral: 10_000_000,
            max_price: 200_000_000_000_000,
            ..ask()
        };
        assert_eq!(evaluate(&edge, &offer(), &p), Ok(200_000_000_000_000));
    }

    #[test]
    fn gpus_held_by_other_jobs_are_not_offered_again() {
        let p = pricing();
        // A 2-GPU node with 4 slots, one 2-GPU job on it: a free slot but no free GPU.
        let two = Ask {
            gpu_count: 2,
            ..ask()
        };
        let one_busy = Offer {
            free_slots: 3,
            held_gpus: 2,
            ..offer()
        };
        assert_eq!(
            evaluate(&two, &one_busy, &p).map_err(|e| e.label()),
            Err("gpus_busy")
        );
        assert_eq!(
            evaluate(&ask(), &one_busy, &p).map_err(|e| e.label()),
            Err("gpus_busy")
        );
        // One GPU held: a 1-GPU order fits, a 2-GPU one does not.
        let half = Offer {
            held_gpus: 1,
            ..one_busy.clone()
        };
        assert!(evaluate(&ask(), &half, &p).is_ok());
        assert_eq!(
            evaluate(&two, &half, &p).map_err(|e| e.label()),
            Err("gpus_busy")
        );
        // A node that pins no GPU (GPU-less host running built-ins on the CPU) or lets jobs
        // share them admits by slots only, as before.
        let shared = Offer {
            exclusive_gpus: false,
            ..one_busy
        };
        assert!(evaluate(&two, &shared, &p).is_ok());
    }
}

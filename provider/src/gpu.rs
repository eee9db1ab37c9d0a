//! GPU discovery and allocation.
//!
//! Discovery: NVML (the driver's library, loaded at runtime by gridlease-gpu: model, UUID, VRAM,
//! SMs, driver and CUDA versions), then `nvidia-smi`, then the `[capacity]` the config declares.
//! No CUDA is needed at build time; a host without a GPU or driver gets a message saying what was
//! looked for, never a panic.
//!
//! Allocation ([`GpuAllocator`]): each job gets whole GPUs, named by UUID (`CUDA_VISIBLE_DEVICES`
//! for process jobs, device requests for containers, the device of a built-in job); concurrent
//! jobs never share one unless `jobs.share_gpus` allows it.

use std::{
    process::Command,
    sync::{Arc, Mutex},
};

use gridlease_primitives::{gpu, spec::Workload};

use crate::config::Capacity;

/// One GPU as the driver reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gpu {
    /// Marketing name, e.g. "NVIDIA H100 80GB HBM3".
    pub name: String,
    /// Stable id, used for `CUDA_VISIBLE_DEVICES`.
    pub uuid: String,
    /// VRAM, MiB.
    pub vram_mib: u64,
    /// Driver version.
    pub driver: String,
    /// Streaming multiprocessors (NVML/CUDA; unknown from `nvidia-smi` or a declaration).
    pub sm_count: Option<u32>,
    /// Highest CUDA version the driver supports (empty when unknown).
    pub cuda: String,
    /// The market class it sells as ([`gpu::GPU_CLASSES`]).
    pub class: String,
}

/// What the node offers: its GPUs (empty on a CPU-only host) and the capacity it advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inventory {
    /// GPUs found (or declared, with synthetic ids).
    pub gpus: Vec<Gpu>,
    /// Where the list came from, for `check` and the logs.
    pub source: String,
}

impl Inventory {
    /// The bitmap of classes for `Staking` (always including `any`).
    pub fn class_bitmap(&self) -> u64 {
        gpu::class_bitmap(self.gpus.iter().map(|g| g.class.as_str())).unwrap_or(1)
    }

    /// Smallest VRAM among the GPUs, GiB (what every GPU can promise).
    pub fn vram_gib(&self) -> u16 {
        let min = self.gpus.iter().map(|g| g.vram_mib).min().unwrap_or(0);
        u16::try_from(min / 1024).unwrap_or(u16::MAX)
    }
}

impl Gpu {
    /// One line for `check` and the logs: model, UUID, VRAM, SMs, driver, CUDA, class.
    pub fn describe(&self) -> String {
        let or = |s: &str| {
            if s.is_empty() {
                "?".to_owned()
            } else {
                s.to_owned()
            }
        };
        format!(
            "{} ({}, {} MiB, {} SMs, driver {}, CUDA {}, class {})",
            self.name,
            self.uuid,
            self.vram_mib,
            self.sm_count.map_or("?".to_owned(), |n| n.to_string()),
            or(&self.driver),
            or(&self.cuda),
            self.class
        )
    }

    /// From NVML's report.
    pub fn from_info(g: gridlease_gpu::GpuInfo) -> Self {
        Self {
            class: class_of(&g.name),
            name: g.name,
            uuid: g.uuid,
            vram_mib: g.vram_mib,
            driver: g.driver,
            sm_count: g.sm_count,
            cuda: g.cuda,
        }
    }
}

/// The market class of a GPU name (`any` when it is not one the market lists).
pub fn class_of(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    let table = [
        ("gh200", "gh200"),
        ("h200", "h200"),
        ("h100", "h100"),
        ("b200", "b200"),
        (
            "a100",
            if n.contains("80g") {
                "a100-80g"
            } else {
                "a100-40g"
            },
        ),
        ("l40s", "l40s"),
        ("l4", "l4"),
        ("a10", "a10"),
        ("t4", "t4"),
        ("rtx 5090", "rtx5090"),
        ("rtx 4090", "rtx4090"),
        ("rtx 3090", "rtx3090"),
        ("mi300x", "mi300x"),
        ("mi250", "mi250"),
    ];
    table
        .iter()
        .find(|(needle, _)| n.contains(needle))
        .map_or("any", |(_, class)| class)
        .to_owned()
}

/// Parse `nvidia-smi --query-gpu=name,uuid,memory.total,driver_version
/// --format=csv,noheader,nounits`.
pub fn parse_nvidia_smi(out: &str) -> Result<Vec<Gpu>, String> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let [name, uuid, mem, driver] = f[..] else {
                return Err(format!("unexpected nvidia-smi line: {line}"));
            };
            let vram_mib = mem
                .parse()
                .map_err(|_| format!("unexpected memory.total \"{mem}\" in: {line}"))?;
            Ok(Gpu {
                name: name.to_owned(),
                uuid: uuid.to_owned(),
                vram_mib,
                driver: driver.to_owned(),
                sm_count: None,
                cuda: String::new(),
                class: class_of(name),
            })
        })
        .collect()
}

/// Find the GPUs per `capacity`: declared, or NVML, else `nvidia-smi`. `Auto` on a host without
/// an NVIDIA driver gives an empty inventory and says so: the node then sells CPU-run built-in
/// jobs (class `any`) only.
pub fn discover(capacity: &Capacity) -> Inventory {
    if let Capacity::Declared {
        class,
        count,
        vram_gib,
    } = capacity
    {
        let gpus = (0..*count)
            .map(|i| Gpu {
                name: format!("declared {class}"),
                uuid: format!("declared-{i}"),
                vram_mib: u64::from(*vram_gib) * 1024,
                driver: String::new(),
                sm_count: None,
                cuda: String::new(),
                class: class.clone(),
            })
            .collect();
        return Inventory {
            gpus,
            source: "declared in [capacity]".into(),
        };
    }
    let nvml = match gridlease_gpu::discover() {
        Ok(found) if !found.is_empty() => {
            let gpus: Vec<Gpu> = found.into_iter().map(Gpu::from_info).collect();
            return Inventory {
                source: format!("NVML ({} GPU(s))", gpus.len()),
                gpus,
            };
        }
        Ok(_) => "NVML sees no GPU".to_owned(),
        Err(e) => e.to_string(),
    };
    let mut inv = nvidia_smi();
    if inv.gpus.is_empty() {
        inv.source = format!("{nvml}; {}", inv.source);
    }
    inv
}

fn nvidia_smi() -> Inventory {
    let query = [
        "--query-gpu=name,uuid,memory.total,driver_version",
        "--format=csv,noheader,nounits",
    ];
    match Command::new("nvidia-smi").args(query).output() {
        Ok(out) if out.status.success() => {
            match parse_nvidia_smi(&String::from_utf8_lossy(&out.stdout)) {
                Ok(gpus) => Inventory {
                    source: format!("nvidia-smi ({} GPU(s))", gpus.len()),
                    gpus,
                },
                Err(e) => Inventory {
                    gpus: Vec::new(),
                    source: format!("nvidia-smi output not understood ({e}); declare [capacity]"),
                },
            }
        }
        Ok(out) => Inventory {
            gpus: Vec::new(),
            source: format!(
                "nvidia-smi failed ({}): {}; no usable GPU, built-in jobs run on the CPU",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        },
        Err(_) => Inventory {
            gpus: Vec::new(),
            source:
                "no NVIDIA driver (nvidia-smi not found): no GPU, built-in jobs run on the CPU; \
                     declare [capacity] gpus = \"declared\" to override"
                    .into(),
        },
    }
}

/// Hands out whole GPUs to jobs by UUID. Only discovered GPUs are pinned; a CPU-only host or a
/// declared capacity (synthetic ids) gives every job an empty set, and the job runs as before.
#[derive(Clone, Debug)]
pub struct GpuAllocator {
    uuids: Arc<Vec<String>>,
    share: bool,
    /// Jobs holding each GPU.
    users: Arc<Mutex<Vec<u32>>>,
}

/// The GPUs one job holds; released on drop.
#[derive(Debug)]
pub struct GpuLease {
    uuids: Vec<String>,
    held: Vec<usize>,
    users: Arc<Mutex<Vec<u32>>>,
    /// Why the job got fewer GPUs than it asked for (none when it got them all).
    pub shortfall: Option<String>,
    /// Whether the node pins GPUs at all (false on a CPU-only host or a declared capacity).
    pub pinned: bool,
}

impl GpuLease {
    /// UUIDs of the GPUs held (empty: none).
    pub fn uuids(&self) -> &[String] {
        &self.uuids
    }

    /// The value of `CUDA_VISIBLE_DEVICES` for this job: its UUIDs, comma-separated (empty hides
    /// every GPU).
    pub fn visible_devices(&self) -> String {
        self.uuids.join(",")
    }

    /// `w` with `CUDA_VISIBLE_DEVICES` set to this job's GPUs when it runs a command (container or
    /// service) on a node that pins GPUs. It replaces any value the tenant's spec sets, so a
    /// process job sees its own GPUs only (containers are also given exactly these devices).
    pub fn apply(&self, mut w: Workload) -> Workload {
        if self.pinned
            && let Workload::Container { env, .. } | Workload::Service { env, .. } = &mut w
        {
            env.insert("CUDA_VISIBLE_DEVICES".into(), self.visible_devices());
        }
        w
    }
}

impl Drop for GpuLease {
    fn drop(&mut self) {
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for &i in &self.held {
            users[i] = users[i].saturating_sub(1);
        }
    }
}

impl GpuAllocator {
    /// Over the GPUs of `inv` that have real UUIDs; `share` lets concurrent jobs share GPUs when
    /// none is free (`jobs.share_gpus`).
    pub fn new(inv: &Inventory, share: bool) -> Self {
        let uuids: Vec<String> = inv
            .gpus
            .iter()
            .filter(|g| g.uuid.starts_with("GPU-") || g.uuid.starts_with("MIG-"))
            .map(|g| g.uuid.clone())
            .collect();
        Self {
            users: Arc::new(Mutex::new(vec![0; uuids.len()])),
            uuids: Arc::new(uuids),
            share,
        }
    }

    /// GPUs this allocator manages.
    pub fn len(&self) -> usize {
        self.uuids.len()
    }

    /// Whether it manages none (CPU-only host or declared capacity).
    pub fn is_empty(&self) -> bool {
        self.uuids.is_empty()
    }

    /// GPUs no job holds.
    pub fn free(&self) -> usize {
        let users = self
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        users.iter().filter(|&&u| u == 0).count()
    }

    /// `count` whole GPUs for one job: free ones first; when too few are free, the least used
    /// ones if sharing is allowed, else only the free ones, with the shortfall said (a built-in
    /// job then runs on the CPU, a container without the missing devices).
    pub fn acquire(&self, count: u8) -> GpuLease {
        let want = usize::from(count);
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut order: Vec<usize> = (0..users.len()).collect();
        // Free first, then least used; ties by index so the choice is stable.
        order.sort_by_key(|&i| (users[i], i));
        let free = order.iter().filter(|&&i| users[i] == 0).count();
        let take = if self.uuids.is_empty() {
            0
        } else if self.share {
            want.min(order.len())
        } else {
            want.min(free)
        };
        let held: Vec<usize> = order.into_iter().take(take).collect();
        for &i in &held {
            users[i] += 1;
        }
        let shortfall = (!self.uuids.is_empty() && take < want).then(|| {
            format!(
                "{want} GPU(s) asked, {take} given: {free} of {} free and jobs.share_gpus = {}",
                self.uuids.len(),
                self.share
            )
        });
        GpuLease {
            uuids: held.iter().map(|&i| self.uuids[i].clone()).collect(),
            held,
            users: self.users.clone(),
            shortfall,
            pinned: !self.uuids.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nvidia_smi_and_classifies() {
        let out = "NVIDIA H100 80GB HBM3, GPU-5f1c2b7e-0000-1111-2222-333344445555, 81559, 550.54.15\n\
                   NVIDIA A100-SXM4-80GB, GPU-aa, 81920, 550.54.15\n\
                   Tesla T4, GPU-bb, 15360, 535.1\n";
        let gpus = parse_nvidia_smi(out).expect("parses");
        let classes: Vec<&str> = gpus.iter().map(|g| g.class.as_str()).collect();
        assert_eq!(classes, ["h100", "a100-80g", "t4"]);
        assert_eq!(gpus[0].vram_mib, 81_559);
        let inv = Inventory {
            gpus,
            source: String::new(),
        };
        assert_eq!(inv.vram_gib(), 15);
        assert_eq!(inv.class_bitmap(), 1 | 1 << 9 | 1 << 8 | 1 << 1);
        assert!(parse_nvidia_smi("garbage").is_err());
        assert!(parse_nvidia_smi("a, b, lots, d").is_err());
    }

    #[test]
    fn declared_capacity_and_a_host_without_gpus_do_not_panic() {
        let inv = discover(&Capacity::Declared {
            class: "l4".into(),
            count: 2,
            vram_gib: 24,
        });
        assert_eq!((inv.gpus.len(), inv.vram_gib()), (2, 24));
        // This machine may or may not have a driver; either way discovery returns a report.
        let auto = discover(&Capacity::Auto);
        assert!(!auto.source.is_empty());
        for g in &auto.gpus {
            assert!(g.describe().contains(&g.uuid));
        }
    }

    fn inventory(n: usize) -> Inventory {
        Inventory {
            gpus: (0..n)
                .map(|i| Gpu {
                    name: "NVIDIA H200".into(),
                    uuid: format!("GPU-{i}"),
                    vram_mib: 143_771,
                    driver: "570.1".into(),
                    sm_count: Some(132),
                    cuda: "12.8".into(),
                    class: "h200".into(),
                })
                .collect(),
            source: String::new(),
        }
    }

    #[test]
    fn concurrent_jobs_get_whole_distinct_gpus_and_release_them() {
        let a = GpuAllocator::new(&inventory(3), false);
        let j1 = a.acquire(2);
        assert_eq!(j1.uuids(), ["GPU-0", "GPU-1"]);
        assert_eq!(j1.visible_devices(), "GPU-0,GPU-1");
        let j2 = a.acquire(2);
        assert_eq!(j2.uuids(), ["GPU-2"]);
        assert!(
            j2.shortfall
                .as_deref()
                .is_some_and(|s| s.contains("2 GPU(s) asked, 1 given"))
        );
        let j3 = a.acquire(1);
        assert!(j3.uuids().is_empty(), "never shared: {j3:?}");
        assert_eq!(j3.visible_devices(), "");
        drop(j1);
        assert_eq!(a.free(), 2);
        let j4 = a.acquire(1);
        assert_eq!(j4.uuids(), ["GPU-0"]);
        let w = Workload::Container {
            image: "x".into(),
            command: vec!["nvidia-smi".into()],
            env: [("CUDA_VISIBLE_DEVICES".to_owned(), "all-of-them".to_owned())].into(),
        };
        let Workload::Container { env, .. } = j4.apply(w.clone()) else {
            panic!("still a container job")
        };
        assert_eq!(
            env["CUDA_VISIBLE_DEVICES"], "GPU-0",
            "the tenant cannot widen it"
        );
        let Workload::Container { env, .. } = j3.apply(w) else {
            panic!("still a container job")
        };
        assert_eq!(env["CUDA_VISIBLE_DEVICES"], "", "no GPU left: none visible");
        assert!(j4.shortfall.is_none());
        drop((j2, j3, j4));
        assert_eq!(a.free(), 3);
    }

    #[test]
    fn sharing_only_when_configured_and_declared_gpus_are_not_pinned() {
        let a = GpuAllocator::new(&inventory(1), true);
        let (j1, j2) = (a.acquire(1), a.acquire(1));
        assert_eq!(
            (j1.uuids(), j2.uuids()),
            (&["GPU-0".to_owned()][..], &["GPU-0".to_owned()][..])
        );
        let declared = discover(&Capacity::Declared {
            class: "l4".into(),
            count: 2,
            vram_gib: 24,
        });
        let d = GpuAllocator::new(&declared, false);
        assert!(d.is_empty());
        let j = d.acquire(1);
        assert!(j.uuids().is_empty() && j.shortfall.is_none() && !j.pinned);
        let w = Workload::Container {
            image: "x".into(),
            command: vec!["true".into()],
            env: Default::default(),
        };
        assert_eq!(
            j.apply(w.clone()),
            w,
            "nothing pinned: the spec is left alone"
        );
    }
}

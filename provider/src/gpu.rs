//! GPU discovery: `nvidia-smi` (the driver's own tool) at runtime, else the declared capacity.
//! No CUDA is needed at build time; a host without a GPU or driver gets a message saying what was
//! looked for, never a panic. (NVML through the driver library is the next step: same report.)

use std::process::Command;

use gridlease_core::gpu;

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
                class: class_of(name),
            })
        })
        .collect()
}

/// Find the GPUs per `capacity`. `Auto` on a host without an NVIDIA driver gives an empty
/// inventory and says so: the node then sells CPU-run built-in jobs (class `any`) only.
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
                class: class.clone(),
            })
            .collect();
        return Inventory {
            gpus,
            source: "declared in [capacity]".into(),
        };
    }
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
    }
}

//! GPU classes: the names behind the class index an order asks for and the class bitmap a
//! provider advertises (`Staking` capacity). Positions are part of the protocol: append only.

/// Class names by bit position. `any` (bit 0) is advertised by every provider, including one
/// that runs the built-in workloads on its CPU.
pub const GPU_CLASSES: [&str; 16] = [
    "any", "t4", "l4", "a10", "rtx3090", "rtx4090", "l40s", "a100-40g", "a100-80g", "h100", "h200",
    "b200", "mi250", "mi300x", "rtx5090", "gh200",
];

/// Bit position of a class name (case-insensitive; `_` and `-` interchangeable).
pub fn class_index(name: &str) -> Option<u8> {
    let norm = name.trim().to_ascii_lowercase().replace('_', "-");
    GPU_CLASSES
        .iter()
        .position(|c| *c == norm)
        .and_then(|i| u8::try_from(i).ok())
}

/// Name of class `index`, or `class<N>` for a position this build does not know yet.
pub fn class_name(index: u8) -> String {
    GPU_CLASSES
        .get(usize::from(index))
        .map_or_else(|| format!("class{index}"), |c| (*c).to_owned())
}

/// Bitmap of the given class names (always including `any`).
pub fn class_bitmap<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<u64> {
    names
        .into_iter()
        .try_fold(1u64, |acc, n| class_index(n).map(|i| acc | 1 << i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (i, name) in GPU_CLASSES.iter().enumerate() {
            assert_eq!(class_index(name), Some(i as u8));
            assert_eq!(class_name(i as u8), *name);
        }
        assert_eq!(class_index("A100_80G"), Some(8));
        assert_eq!(class_index("tpu"), None);
        assert_eq!(class_name(40), "class40");
        assert_eq!(
            class_bitmap(["h100", "a100-80g"]),
            Some(1 | 1 << 9 | 1 << 8)
        );
        assert_eq!(class_bitmap(["nope"]), None);
    }
}

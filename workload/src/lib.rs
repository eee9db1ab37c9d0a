//! gridlease-workload: the built-in verifiable workload, pure computation with no I/O.
//!
//! - [`matmul`]: `matmul_i8` (C = A x B, INT8 -> INT32): the input generator, the CPU reference,
//!   Freivalds' check over 2^61 - 1, and the material of a fraud proof.
//! - [`merkle`]: the positional keccak Merkle tree a result is committed with (1 KiB leaves).
//!
//! Rust and Solidity are held to the same bytes by `testdata/matmul_vectors.json`; the CUDA path
//! (`gridlease-gpu`) is held to this crate's bits.

pub mod matmul;
pub mod merkle;

//! `gridlease-bench`: placeholder replaced below.
fn main() {}

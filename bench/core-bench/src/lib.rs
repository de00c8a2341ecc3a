//! Empty: the benchmarks are in `benches/decision.rs`.

//! Placeholder replaced by the messaging benchmarks.
fn main() {}

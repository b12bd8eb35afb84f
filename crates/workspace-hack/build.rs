//! Empty on purpose: a build script makes the `[build-dependencies]` of Cargo.toml part
//! of the host's feature resolution (see Cargo.toml).

fn main() {}

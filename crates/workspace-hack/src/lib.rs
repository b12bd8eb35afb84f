//! Empty on purpose: this crate exists for its dependency list (see Cargo.toml), which
//! gives each shared dependency one feature set in every build of the workspace.

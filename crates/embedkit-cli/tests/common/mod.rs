//! Shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A fresh, empty folder for one test, removed when it passes.
pub fn tmpdir(name: &str) -> TmpDir {
    TmpDir::new("embedkit-cli-test", name)
}
pub mod server;

/// BGE-M3's oracle outputs and checks, shared with the library's tests.
#[path = "../../../embedkit/tests/common/m3.rs"]
pub mod m3;
#[path = "../../../embedkit/tests/common/tmp.rs"]
pub mod tmp;
/// The test family's oracle outputs and checks, shared with the library's tests.
#[path = "../../../embedkit/tests/common/twin.rs"]
pub mod twin;
pub use tmp::TmpDir;

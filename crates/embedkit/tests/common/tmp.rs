//! Test folders that do not outlive their test (shared with the CLI's tests).
//!
//! nextest runs every test in a process of its own, so a folder named after the process
//! is never reused: left behind, each run of the suite leaked hundreds of them into the
//! system's temporary folder (the int8 tests' alone are 144 MB each).

use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A fresh, empty folder for one test, removed when the test passes. A failing test
/// keeps it, and says where, to be looked at.
#[derive(Debug)]
pub struct TmpDir(PathBuf);

impl TmpDir {
    /// `<temp>/<prefix>-<name>-<pid>`: the process id keeps concurrent test binaries apart.
    pub fn new(prefix: &str, name: &str) -> TmpDir {
        let d = std::env::temp_dir().join(format!("{prefix}-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TmpDir(d)
    }
}

impl Deref for TmpDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TmpDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

// As a command's argument or environment value.
impl AsRef<std::ffi::OsStr> for TmpDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test folder kept for inspection: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

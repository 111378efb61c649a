//! Model archives (`.tar.gz`): whatever the bytes, checking and extracting gives a folder
//! inside the destination or an error; nothing is written outside it, and no link in it
//! resolves outside it.
#![no_main]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use embedkit::unstable::hub::extract_archive;
use embedkit_fuzz::{check_message, scratch};
use libfuzzer_sys::fuzz_target;

/// `root/a/b/c/dest`: an entry escaping up to four levels shows up beside one of these.
static ROOT: LazyLock<PathBuf> = LazyLock::new(|| scratch("archive"));

const LIMIT: u64 = 1 << 20;

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every path under `dir` resolves inside `inside` (links followed).
fn all_inside(dir: &Path, inside: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.filter_map(|e| e.ok()) {
        let path = entry.path();
        if let Ok(real) = std::fs::canonicalize(&path) {
            assert!(
                real.starts_with(inside),
                "{} resolves to {}, outside the destination",
                path.display(),
                real.display()
            );
        }
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            all_inside(&path, inside);
        }
    }
}

// The layout of an input: a flag byte, then a tar stream to compress (flag even) or a
// whole `.tar.gz` (flag odd).
fuzz_target!(|data: &[u8]| {
    let Some((&flag, data)) = data.split_first() else {
        return;
    };
    let root = &*ROOT;
    let file = root.join("model.tar.gz");
    let bytes = if flag & 1 == 1 {
        data.to_vec()
    } else {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).expect("compress");
        gz.finish().expect("compress")
    };
    std::fs::write(&file, bytes).expect("write archive");
    let deep = root.join("a/b/c");
    let _ = std::fs::remove_dir_all(root.join("a"));
    std::fs::create_dir_all(&deep).expect("create folders");
    let dest = deep.join("dest");

    match extract_archive(&file, &dest, LIMIT) {
        Ok(()) => {
            let real_dest = std::fs::canonicalize(&dest).expect("dest exists");
            all_inside(&dest, &real_dest);
        }
        Err(e) => {
            if std::env::var_os("FUZZ_DEBUG").is_some() {
                eprintln!("{e}");
            }
            check_message(&e)
        }
    }
    assert_eq!(
        names(root),
        ["a", "model.tar.gz"],
        "written outside the destination"
    );
    assert_eq!(
        names(&root.join("a")),
        ["b"],
        "written outside the destination"
    );
    assert_eq!(
        names(&root.join("a/b")),
        ["c"],
        "written outside the destination"
    );
    let in_c = names(&deep);
    assert!(
        in_c.is_empty() || in_c == ["dest"],
        "written outside the destination: {in_c:?}"
    );
});

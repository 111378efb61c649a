//! What the fuzz targets share: the seeded test models (`make test-models`) and a
//! scratch folder per process.

use std::path::{Path, PathBuf};

/// A seeded test model folder. Missing models stop the fuzzer with what to run: a fuzz
/// run that silently tested nothing would look like a clean run.
pub fn test_model(name: &str) -> PathBuf {
    let root = std::env::var("EMBEDKIT_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-models"));
    let dir = root.join(name);
    if !dir.is_dir() {
        panic!(
            "fuzz: test model folder {} is missing; run `make test-models` first",
            dir.display()
        );
    }
    dir
}

/// A fresh folder for this process, emptied first. Under fuzz/target (libFuzzer ends the
/// process with `exit`, so nothing would remove it): it goes with the build's folder.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/scratch")
        .join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Copies a folder tree (the test models are a few MB).
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create folder");
    for entry in std::fs::read_dir(src).expect("read folder") {
        let entry = entry.expect("folder entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).expect("copy file");
        }
    }
}

/// The JSON a fuzz input means: the bytes parsed as JSON when they are, else as a string.
pub fn json_value(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// `base` with one top-level key (picked by `pick` among its keys and a few extra names)
/// set to `value`, or removed when `value` is null.
pub fn with_key(
    base: &serde_json::Value,
    pick: u8,
    extra: &[&str],
    value: serde_json::Value,
) -> serde_json::Value {
    let mut out = base.clone();
    let Some(obj) = out.as_object_mut() else {
        return out;
    };
    let mut keys: Vec<String> = obj.keys().cloned().collect();
    keys.extend(extra.iter().map(|s| s.to_string()));
    let key = keys[usize::from(pick) % keys.len()].clone();
    if value.is_null() {
        obj.remove(&key);
    } else {
        obj.insert(key, value);
    }
    out
}

/// An error message must say something.
pub fn check_message(e: &embedkit::Error) {
    assert!(
        !e.to_string().trim().is_empty(),
        "empty error message: {e:?}"
    );
}

//! Filesystem work inside a model cache that another local user may reach (the default
//! cache is `<tmp>/fastembed_cache`, in a folder every user can write): the cache must be
//! ours, folders we make are private, and nothing we create, resume, list or remove is
//! reached through a link someone planted.
//!
//! On other platforms than Unix the ownership checks are not made (no uid to compare).

use std::fs::{File, Metadata, OpenOptions};
use std::path::{Component, Path};

use crate::error::{Error, Result};

/// What makes a folder unsafe to trust, if anything.
fn untrusted(meta: &Metadata) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me && meta.uid() != 0 {
            return Some(format!("belongs to another user (uid {})", meta.uid()));
        }
        let mode = meta.mode();
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Some(format!(
                "can be written by other users (mode {:o})",
                mode & 0o7777
            ));
        }
    }
    let _ = meta;
    None
}

/// The advice every cache refusal ends with.
const CHOOSE_ANOTHER: &str = "choose a folder of your own with --cache-dir, cache_dir or \
                              FASTEMBED_CACHE_PATH";

/// Refuses a cache folder another user could have filled or could change: owned by
/// someone other than us or root, or writable by others without the sticky bit. A
/// missing folder is fine (we create it private).
pub fn check_cache_root(dir: &Path) -> Result<()> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    if !meta.is_dir() {
        return Err(Error::Download(format!(
            "the model cache {} is not a folder; {CHOOSE_ANOTHER}",
            dir.display()
        )));
    }
    match untrusted(&meta) {
        Some(why) => Err(Error::Download(format!(
            "refusing the model cache {}: it {why}, so its files could be replaced; \
             {CHOOSE_ANOTHER}",
            dir.display()
        ))),
        None => Ok(()),
    }
}

/// Creates `path` (inside `root`) and every missing folder between them, each private
/// to us (0700); an existing one must be a real folder (not a link) that we may trust.
/// `root` itself is created if missing and checked with [`check_cache_root`].
pub fn ensure_dir(root: &Path, path: &Path) -> Result<()> {
    check_cache_root(root)?;
    create_private(root)?;
    let rel = inside(root, path)?;
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::Download(format!(
                    "refusing {}: it is a link inside the model cache {}, which embedkit \
                     never follows; remove it, or {CHOOSE_ANOTHER}",
                    at.display(),
                    root.display()
                )))
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(Error::Download(format!(
                    "{} is in the way: a file where the model cache needs a folder; remove it",
                    at.display()
                )))
            }
            Ok(meta) => {
                if let Some(why) = untrusted(&meta) {
                    return Err(Error::Download(format!(
                        "refusing {} in the model cache: it {why}; remove it, or \
                         {CHOOSE_ANOTHER}",
                        at.display()
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_private(&at)?,
            Err(e) => return Err(Error::io(&at, e)),
        }
    }
    Ok(())
}

/// Makes one folder, private to us; fine if it appeared meanwhile (checked by callers).
fn create_private(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| Error::io(dir, e))
}

/// `path` relative to `root`, refusing anything that climbs out of it.
pub fn inside<'a>(root: &Path, path: &'a Path) -> Result<&'a Path> {
    let rel = path.strip_prefix(root).map_err(|_| {
        Error::InvalidArgument(format!(
            "{} is not inside the model cache {}",
            path.display(),
            root.display()
        ))
    })?;
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(Error::InvalidArgument(format!(
            "{} is not a plain path inside the model cache {}",
            path.display(),
            root.display()
        )));
    }
    Ok(rel)
}

/// Whether `path` is one of our regular files (not a link, not shared by a hard link).
pub fn is_own_file(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => own_regular(&meta),
        Err(_) => false,
    }
}

fn own_regular(meta: &Metadata) -> bool {
    if !meta.file_type().is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me || meta.nlink() != 1 {
            return false;
        }
    }
    true
}

/// The bytes already in a partial download that we may resume: 0 when there is none.
/// Anything else at that name (a link, a folder, another user's file, a file with other
/// hard links) is removed, never written through.
pub fn resumable_len(partial: &Path) -> Result<u64> {
    match std::fs::symlink_metadata(partial) {
        Ok(meta) if own_regular(&meta) => Ok(meta.len()),
        Ok(meta) => {
            tracing::warn!(
                path = %partial.display(),
                kind = ?meta.file_type(),
                "a partial download that embedkit did not write is in the cache; removing it"
            );
            remove_entry(partial)?;
            Ok(0)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::io(partial, e)),
    }
}

/// Removes one entry without following it: a link goes, its target stays.
fn remove_entry(path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
    let removed = if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    removed.map_err(|e| {
        Error::Download(format!(
            "could not remove {}, which embedkit did not write ({e}); remove it, or \
             {CHOOSE_ANOTHER}",
            path.display()
        ))
    })
}

/// Opens a partial download for writing: to append to the bytes [`resumable_len`]
/// accepted, or as a new file created here (never an existing one, never through a link).
pub fn open_partial(partial: &Path, append: bool) -> Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW).mode(0o600);
    }
    if append {
        opts.append(true);
    } else {
        if std::fs::symlink_metadata(partial).is_ok() {
            remove_entry(partial)?;
        }
        opts.create_new(true);
    }
    let file = opts.open(partial).map_err(|e| {
        Error::Download(format!(
            "refusing to write the download {}: {e} (something else was put there)",
            partial.display()
        ))
    })?;
    // The name could have been swapped between the check and the open.
    let meta = file.metadata().map_err(|e| Error::io(partial, e))?;
    if !own_regular(&meta) {
        return Err(Error::Download(format!(
            "refusing to write the download {}: it is not a file of ours",
            partial.display()
        )));
    }
    Ok(file)
}

/// Creates `path` with `bytes` as a new file (no link followed), then renames it over
/// `dest`: written completely or not at all.
pub fn write_new(path: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut file = open_partial(path, false)?;
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    std::fs::rename(path, dest).map_err(|e| Error::io(dest, e))
}

/// Removes `path` (inside `root`) without following any link on the way: every folder
/// between them must be a real folder, and a link at `path` itself is removed, not its
/// target. Returns whether anything was there.
pub fn remove_inside(root: &Path, path: &Path) -> Result<bool> {
    let rel = inside(root, path)?;
    let mut at = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(&at, e)),
            Ok(meta) if i + 1 < parts.len() && !meta.is_dir() => {
                // A link (or file) where a folder should be: what lies behind it is not
                // ours to remove.
                tracing::warn!(path = %at.display(), "not a folder; nothing removed through it");
                return Ok(false);
            }
            Ok(_) => {}
        }
    }
    remove_entry(&at)?;
    Ok(true)
}

/// The size of the regular files under `dir`, links not followed (a link to `/` in a
/// cache costs nothing).
pub fn tree_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Whether every folder from `root` down to `path` is a real folder (no link) that we may
/// trust: where a model is read from. One that another user made inside a sticky shared
/// cache, or a link planted there, is not.
pub fn trusted_dir(root: &Path, path: &Path) -> bool {
    let Ok(rel) = inside(root, path) else {
        return false;
    };
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() && untrusted(&meta).is_none() => {}
            Ok(_) => {
                tracing::warn!(path = %at.display(), "not reading a model through this cache entry: a link, or not ours");
                return false;
            }
            Err(_) => return false,
        }
    }
    true
}

/// Whether `path` is a real folder (not a link to one).
pub fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .map(|m| m.is_dir())
        .unwrap_or(false)
}

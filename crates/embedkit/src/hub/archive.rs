//! Safe extraction of `.tar.gz` model archives.
//!
//! The whole archive is checked before anything is written: every path must stay inside
//! the target (no absolute paths, no `..`, links resolving inside only), only files,
//! folders and such links are allowed, and the unpacked size is capped. Only then is it
//! extracted, into a folder the caller renames into place. fastembed's `extractall`
//! without checks is its issue #626.

use std::fs::File;
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use tar::{Archive, EntryType};

use crate::error::{Error, Result};

/// Most entries an archive may have.
const MAX_ENTRIES: u64 = 100_000;

fn open(path: &Path) -> Result<Archive<GzDecoder<File>>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(Archive::new(GzDecoder::new(file)))
}

fn refuse(archive: &Path, reason: String) -> Error {
    Error::UnsafeArchive {
        path: archive.to_path_buf(),
        reason,
    }
}

/// `path` as a list of normal components, or why it is not one.
fn relative_parts(path: &Path) -> std::result::Result<Vec<String>, String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err(format!("{} contains `..`", path.display())),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{} is an absolute path", path.display()))
            }
        }
    }
    Ok(parts)
}

/// Whether a symlink at `entry` (relative) pointing to `target` stays inside the root,
/// resolving `..` lexically against the link's folder.
fn link_stays_inside(entry: &[String], target: &Path) -> bool {
    let mut stack: Vec<String> = entry[..entry.len().saturating_sub(1)].to_vec();
    for c in target.components() {
        match c {
            Component::Normal(p) => stack.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                if stack.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Checks every entry of the archive without writing anything; returns the unpacked size.
pub fn check(archive: &Path, max_bytes: u64) -> Result<u64> {
    let mut ar = open(archive)?;
    let mut total = 0u64;
    let mut count = 0u64;
    let entries = ar
        .entries()
        .map_err(|e| refuse(archive, format!("not a tar.gz archive: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| refuse(archive, format!("corrupt archive: {e}")))?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(refuse(archive, format!("more than {MAX_ENTRIES} entries")));
        }
        let path = entry
            .path()
            .map_err(|e| refuse(archive, format!("bad entry name: {e}")))?
            .into_owned();
        let parts = relative_parts(&path).map_err(|r| refuse(archive, r))?;
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                total = total.saturating_add(entry.header().size().unwrap_or(u64::MAX));
            }
            EntryType::Directory => {}
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| refuse(archive, format!("bad link: {e}")))?
                    .ok_or_else(|| refuse(archive, format!("{} has no target", path.display())))?;
                if parts.is_empty() || !link_stays_inside(&parts, &target) {
                    return Err(refuse(
                        archive,
                        format!(
                            "symlink {} -> {} points outside the archive",
                            path.display(),
                            target.display()
                        ),
                    ));
                }
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| refuse(archive, format!("bad link: {e}")))?
                    .ok_or_else(|| refuse(archive, format!("{} has no target", path.display())))?;
                relative_parts(&target)
                    .map_err(|r| refuse(archive, format!("hard link {}: {r}", path.display())))?;
            }
            // PAX and GNU long-name records are consumed by the tar crate itself.
            EntryType::XGlobalHeader | EntryType::XHeader => {}
            other => {
                return Err(refuse(
                    archive,
                    format!("{} is a {other:?}, not a file or folder", path.display()),
                ))
            }
        }
        if total > max_bytes {
            return Err(refuse(
                archive,
                format!("unpacks to more than the limit of {max_bytes} bytes"),
            ));
        }
    }
    Ok(total)
}

/// Checks the archive, then extracts it into `dest`, a new folder.
pub fn extract(archive: &Path, dest: &Path, max_bytes: u64) -> Result<()> {
    check(archive, max_bytes)?;
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let mut ar = open(archive)?;
    ar.set_preserve_permissions(false);
    ar.set_preserve_mtime(false);
    let mut written = 0u64;
    let entries = ar.entries().map_err(|e| refuse(archive, e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| refuse(archive, e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| refuse(archive, e.to_string()))?
            .into_owned();
        let parts = relative_parts(&path).map_err(|r| refuse(archive, r))?;
        if parts.is_empty() {
            continue;
        }
        let target: PathBuf = parts.iter().fold(dest.to_path_buf(), |p, c| p.join(c));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        if entry.header().entry_type() == EntryType::Link {
            // Hard links name their target from the archive root: point them into dest.
            let link = entry
                .link_name()
                .map_err(|e| refuse(archive, e.to_string()))?
                .ok_or_else(|| refuse(archive, "hard link without target".into()))?;
            let source = relative_parts(&link)
                .map_err(|r| refuse(archive, r))?
                .iter()
                .fold(dest.to_path_buf(), |p, c| p.join(c));
            std::fs::hard_link(&source, &target).map_err(|e| Error::io(&target, e))?;
            continue;
        }
        written = written.saturating_add(entry.header().size().unwrap_or(0));
        if written > max_bytes {
            return Err(refuse(
                archive,
                "grew past the size limit while extracting".into(),
            ));
        }
        entry
            .unpack(&target)
            .map_err(|e| Error::io(&target, std::io::Error::other(e.to_string())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_are_resolved_lexically() {
        let at = |s: &str| s.split('/').map(str::to_string).collect::<Vec<_>>();
        assert!(link_stays_inside(&at("a/b"), Path::new("c")));
        assert!(link_stays_inside(&at("a/b"), Path::new("../c")));
        assert!(!link_stays_inside(&at("a/b"), Path::new("../../c")));
        assert!(!link_stays_inside(&at("b"), Path::new("..")));
        assert!(!link_stays_inside(&at("a/b"), Path::new("/etc/passwd")));
    }

    #[test]
    fn paths_must_be_relative_and_inside() {
        assert!(relative_parts(Path::new("a/./b")).is_ok());
        assert!(relative_parts(Path::new("../a")).is_err());
        assert!(relative_parts(Path::new("a/../../b")).is_err());
        assert!(relative_parts(Path::new("/abs")).is_err());
    }
}

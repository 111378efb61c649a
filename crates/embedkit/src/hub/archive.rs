//! Safe extraction of `.tar.gz` model archives.
//!
//! The whole archive is checked before anything is written: every path must stay inside
//! the target (no absolute paths, no `..`, links resolving inside only), only files,
//! folders and such links are allowed, and the unpacked size is capped. Only then is it
//! extracted, into a folder the caller renames into place. fastembed's `extractall`
//! without checks is its issue #626.

use std::collections::HashSet;
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
/// resolving `..` lexically against the link's folder. Lexical resolution is only sound
/// if the walk never steps into or out of another link (`x -> .` then `x/y -> ..`
/// climbs out while looking inside), so passing through any path in `links` fails too.
fn link_stays_inside(entry: &[String], target: &Path, links: &HashSet<Vec<String>>) -> bool {
    let mut stack: Vec<String> = entry[..entry.len().saturating_sub(1)].to_vec();
    let mut components = target.components().peekable();
    while let Some(c) = components.next() {
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
        if components.peek().is_some() && links.contains(&stack) {
            return false;
        }
    }
    true
}

/// The first proper prefix of `parts` that is a symlink in the archive.
fn through_link<'a>(parts: &'a [String], links: &HashSet<Vec<String>>) -> Option<&'a [String]> {
    (1..parts.len())
        .map(|n| &parts[..n])
        .find(|prefix| links.contains(*prefix))
}

/// What [`check`] keeps of an entry for the checks that need the whole archive.
enum Kept {
    Other,
    Symlink(PathBuf),
    HardLink(Vec<String>),
}

/// Checks every entry of the archive without writing anything; returns the unpacked size.
///
/// Links are checked against the whole archive, because a later entry can turn an
/// earlier path into a link: no entry may lie under a symlink, a symlink's target may
/// not pass through another symlink, and a hard link may not name a symlink (Linux would
/// copy the symlink, relative target and all, to a new place).
pub fn check(archive: &Path, max_bytes: u64) -> Result<u64> {
    let mut ar = open(archive)?;
    let mut total = 0u64;
    let mut kept: Vec<(Vec<String>, Kept)> = Vec::new();
    let entries = ar
        .entries()
        .map_err(|e| refuse(archive, format!("not a tar.gz archive: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| refuse(archive, format!("corrupt archive: {e}")))?;
        if kept.len() as u64 >= MAX_ENTRIES {
            return Err(refuse(archive, format!("more than {MAX_ENTRIES} entries")));
        }
        let path = entry
            .path()
            .map_err(|e| refuse(archive, format!("bad entry name: {e}")))?
            .into_owned();
        let parts = relative_parts(&path).map_err(|r| refuse(archive, r))?;
        let link_target = || -> Result<PathBuf> {
            Ok(entry
                .link_name()
                .map_err(|e| refuse(archive, format!("bad link: {e}")))?
                .ok_or_else(|| refuse(archive, format!("{} has no target", path.display())))?
                .into_owned())
        };
        let what =
            match entry.header().entry_type() {
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                    total = total.saturating_add(entry.header().size().unwrap_or(u64::MAX));
                    Kept::Other
                }
                EntryType::Directory => Kept::Other,
                EntryType::Symlink => {
                    if parts.is_empty() {
                        return Err(refuse(archive, "a symlink at the archive's root".into()));
                    }
                    Kept::Symlink(link_target()?)
                }
                EntryType::Link => {
                    let target = link_target()?;
                    Kept::HardLink(relative_parts(&target).map_err(|r| {
                        refuse(archive, format!("hard link {}: {r}", path.display()))
                    })?)
                }
                // PAX and GNU long-name records are consumed by the tar crate itself.
                EntryType::XGlobalHeader | EntryType::XHeader => Kept::Other,
                other => {
                    return Err(refuse(
                        archive,
                        format!("{} is a {other:?}, not a file or folder", path.display()),
                    ))
                }
            };
        if total > max_bytes {
            return Err(refuse(
                archive,
                format!("unpacks to more than the limit of {max_bytes} bytes"),
            ));
        }
        kept.push((parts, what));
    }

    let links: HashSet<Vec<String>> = kept
        .iter()
        .filter(|(_, k)| matches!(k, Kept::Symlink(_)))
        .map(|(p, _)| p.clone())
        .collect();
    let shown = |parts: &[String]| parts.join("/");
    for (parts, what) in &kept {
        if let Some(link) = through_link(parts, &links) {
            return Err(refuse(
                archive,
                format!("{} lies under the symlink {}", shown(parts), shown(link)),
            ));
        }
        match what {
            Kept::Symlink(target) if !link_stays_inside(parts, target, &links) => {
                return Err(refuse(
                    archive,
                    format!(
                        "symlink {} -> {} points outside the archive",
                        shown(parts),
                        target.display()
                    ),
                ))
            }
            Kept::HardLink(target)
                if links.contains(target) || through_link(target, &links).is_some() =>
            {
                return Err(refuse(
                    archive,
                    format!(
                        "hard link {} -> {} goes through a symlink",
                        shown(parts),
                        shown(target)
                    ),
                ))
            }
            _ => {}
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
        let none = HashSet::new();
        assert!(link_stays_inside(&at("a/b"), Path::new("c"), &none));
        assert!(link_stays_inside(&at("a/b"), Path::new("../c"), &none));
        assert!(!link_stays_inside(&at("a/b"), Path::new("../../c"), &none));
        assert!(!link_stays_inside(&at("b"), Path::new(".."), &none));
        assert!(!link_stays_inside(
            &at("a/b"),
            Path::new("/etc/passwd"),
            &none
        ));
        // Through another link: `x -> .` makes `x/..` the root's parent.
        let x: HashSet<Vec<String>> = [at("x")].into_iter().collect();
        assert!(!link_stays_inside(&at("y"), Path::new("x/../.."), &x));
        assert!(link_stays_inside(&at("y"), Path::new("x"), &x));
        assert!(!link_stays_inside(&at("y"), Path::new("x/f"), &x));
    }

    #[test]
    fn paths_must_be_relative_and_inside() {
        assert!(relative_parts(Path::new("a/./b")).is_ok());
        assert!(relative_parts(Path::new("../a")).is_err());
        assert!(relative_parts(Path::new("a/../../b")).is_err());
        assert!(relative_parts(Path::new("/abs")).is_err());
    }

    /// A `.tar.gz` of `(kind, path, target or contents)` entries, written to a new file.
    fn archive_of(name: &str, entries: &[(&str, &str, &str)]) -> PathBuf {
        let mut builder = tar::Builder::new(Vec::new());
        for (kind, path, arg) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            match *kind {
                "file" => {
                    header.set_entry_type(EntryType::Regular);
                    header.set_size(arg.len() as u64);
                    builder
                        .append_data(&mut header, path, arg.as_bytes())
                        .unwrap();
                }
                kind => {
                    header.set_entry_type(if kind == "symlink" {
                        EntryType::Symlink
                    } else {
                        EntryType::Link
                    });
                    header.set_size(0);
                    builder.append_link(&mut header, path, arg).unwrap();
                }
            }
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let file = std::env::temp_dir().join(format!(
            "embedkit-archive-test-{}-{name}.tar.gz",
            std::process::id()
        ));
        std::fs::write(&file, gz.finish().unwrap()).unwrap();
        file
    }

    fn refusal(name: &str, entries: &[(&str, &str, &str)]) -> String {
        let file = archive_of(name, entries);
        let result = check(&file, 1 << 20);
        let _ = std::fs::remove_file(&file);
        match result {
            Ok(_) => panic!("{name}: the archive passed the check"),
            Err(e) => e.to_string(),
        }
    }

    // Found by the `archive` fuzz target: each link alone stays inside, together they
    // climbed out of the destination.
    #[test]
    fn link_through_a_link_is_refused() {
        let e = refusal("chain", &[("symlink", "x", "."), ("symlink", "x/y", "..")]);
        assert!(e.contains("x/y lies under the symlink x"), "{e}");
        let e = refusal(
            "chain-target",
            &[("symlink", "x", "."), ("symlink", "y", "x/../..")],
        );
        assert!(e.contains("symlink y -> x/../.. points outside"), "{e}");
        // The link coming after the entry under it is caught as well.
        let e = refusal(
            "late-link",
            &[("file", "d/f", "data"), ("symlink", "d", "..")],
        );
        assert!(e.contains("d/f lies under the symlink d"), "{e}");
        let e = refusal(
            "hardlink-to-symlink",
            &[("symlink", "a/l", ".."), ("hardlink", "h", "a/l")],
        );
        assert!(
            e.contains("hard link h -> a/l goes through a symlink"),
            "{e}"
        );
    }

    #[test]
    fn plain_links_inside_pass() {
        let file = archive_of(
            "plain",
            &[
                ("file", "m/a.txt", "a"),
                ("symlink", "m/b.txt", "a.txt"),
                ("hardlink", "m/c.txt", "m/a.txt"),
            ],
        );
        let dest = file.with_extension("out");
        let result = extract(&file, &dest, 1 << 20);
        let read = std::fs::read_to_string(dest.join("m/b.txt"));
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_dir_all(&dest);
        result.unwrap();
        assert_eq!(read.unwrap(), "a");
    }
}

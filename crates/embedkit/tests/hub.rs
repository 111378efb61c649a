//! Downloads against a real HTTP server on 127.0.0.1 that speaks the hub's protocol,
//! with the faults a real network and hostile servers produce.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use embedkit::HubOptions;
use embedkit::{CustomTextModel, Error, ModelSource, Pooling, TextEmbedding};

use common::hub_server::{bge_small_repo, sha256_hex, Fault, HubServer, Repo};
use common::*;

const MODEL: &str = "BAAI/bge-small-en-v1.5";
const REPO: &str = "Qdrant/bge-small-en-v1.5-onnx-Q";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn options(server: &HubServer) -> HubOptions {
    HubOptions {
        endpoint: server.endpoint.clone(),
        token: None,
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(1),
        attempts: 3,
        backoff: Duration::from_millis(50),
        max_archive_bytes: 1 << 30,
        progress: false,
    }
}

/// The seeded bge-small stand-in, served as the registry's repo.
fn repo_with(fault: Fault) -> Repo {
    bge_small_repo(&model_dir("tiny:cls-384"), COMMIT, fault)
}

fn build(cache: &Path, hub: HubOptions) -> embedkit::Result<TextEmbedding> {
    TextEmbedding::builder(MODEL)
        .cache_dir(cache)
        .hub_options(hub)
        .threads(1)
        .build()
}

fn reference_vector() -> Vec<f32> {
    TextEmbedding::builder(MODEL)
        .specific_model_path(model_dir("tiny:cls-384"))
        .threads(1)
        .build()
        .unwrap()
        .embed(&["hello hub"], None)
        .unwrap()
        .remove(0)
}

fn repo_dir(cache: &Path) -> PathBuf {
    cache.join("models--Qdrant--bge-small-en-v1.5-onnx-Q")
}

/// Files under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().display().to_string());
                if p.is_dir() && !p.is_symlink() {
                    walk(base, &p, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn downloads_in_huggingface_layout_then_runs_offline_without_requests() {
    let server = HubServer::start();
    server.add_repo(REPO, repo_with(Fault::None));
    let cache = tmp_dir("layout");
    let model = build(&cache, options(&server)).unwrap();
    assert_eq!(
        model.embed(&["hello hub"], None).unwrap()[0],
        reference_vector()
    );

    let repo = repo_dir(&cache);
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main")).unwrap(),
        COMMIT
    );
    let onnx = std::fs::read(model_dir("tiny:cls-384").join("model_optimized.onnx")).unwrap();
    let link = repo
        .join("snapshots")
        .join(COMMIT)
        .join("model_optimized.onnx");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("../../blobs").join(sha256_hex(&onnx))
    );
    assert_eq!(std::fs::read(&link).unwrap(), onnx);
    assert!(
        !tree(&cache)
            .iter()
            .any(|f| f.ends_with(".incomplete") || f.ends_with(".tmp")),
        "{:?}",
        tree(&cache)
    );
    // preprocessor_config.json is optional: the 404 did not fail the download.
    assert!(server
        .log()
        .iter()
        .any(|l| l.contains("preprocessor_config.json")));

    server.clear_log();
    let again = build(&cache, options(&server)).unwrap();
    assert_eq!(
        again.embed(&["hello hub"], None).unwrap()[0],
        reference_vector()
    );
    assert!(
        server.log().is_empty(),
        "cached model made requests: {:?}",
        server.log()
    );
}

#[test]
fn a_stalled_server_times_out_instead_of_hanging() {
    let server = HubServer::start();
    server.add_repo(REPO, repo_with(Fault::Stall));
    let cache = tmp_dir("stall");
    let started = Instant::now();
    let err = build(&cache, options(&server)).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::Download(_)), "{err}");
    assert!(!repo_dir(&cache).join("refs/main").exists());
}

/// The model file's first transfer fails after `at` bytes; the retry must resume there.
fn resumes_after(fault: Fault, at: usize, name: &str) {
    let server = HubServer::start();
    server.add_repo(REPO, repo_with(fault));
    let cache = tmp_dir(name);
    let model = build(&cache, options(&server)).unwrap();
    assert_eq!(
        model.embed(&["hello hub"], None).unwrap()[0],
        reference_vector()
    );
    let gets = server.gets_of("model_optimized.onnx");
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(gets[1].ends_with(&format!("bytes={at}-")), "{gets:?}");
}

#[test]
fn a_body_that_stalls_times_out_and_the_retry_resumes_it() {
    resumes_after(Fault::StallBodyOnce(100_000), 100_000, "stallbody");
}

#[test]
fn a_cut_connection_is_resumed_with_a_range_request() {
    resumes_after(Fault::CutOnce(250_000), 250_000, "cut");
}

#[test]
fn a_wrong_checksum_is_refused_and_nothing_is_cached() {
    let server = HubServer::start();
    server.add_repo(REPO, repo_with(Fault::WrongChecksum));
    let cache = tmp_dir("checksum");
    let err = build(&cache, options(&server)).unwrap_err().to_string();
    assert!(
        err.contains("is corrupt") && err.contains("sha256"),
        "{err}"
    );
    let files = tree(&repo_dir(&cache));
    assert!(
        !files.iter().any(|f| f.starts_with("snapshots")
            || f.starts_with("refs")
            || f.contains("incomplete")),
        "{files:?}"
    );
    // The other blobs may stay (they were verified); the model's is not among them.
    let blobs = tree(&repo_dir(&cache).join("blobs"));
    assert!(blobs.len() <= 1, "{blobs:?}");
}

#[test]
fn a_missing_file_is_a_404_naming_it() {
    let server = HubServer::start();
    let mut repo = repo_with(Fault::None);
    repo.files.remove("tokenizer.json");
    server.add_repo(REPO, repo);
    let err = build(&tmp_dir("404"), options(&server))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tokenizer.json") && err.contains("404"),
        "{err}"
    );
}

#[test]
fn a_gated_repo_says_how_to_pass_a_token() {
    let server = HubServer::start();
    let mut repo = repo_with(Fault::None);
    repo.token = Some("hf_secret".into());
    server.add_repo(REPO, repo);
    let err = build(&tmp_dir("gated1"), options(&server))
        .unwrap_err()
        .to_string();
    assert!(err.contains("gated") && err.contains("HF_TOKEN"), "{err}");
    let mut with_token = options(&server);
    with_token.token = Some("hf_secret".into());
    let cache = tmp_dir("gated2");
    let model = build(&cache, with_token).unwrap();
    assert_eq!(
        model.embed(&["hello hub"], None).unwrap()[0],
        reference_vector()
    );
}

#[test]
fn offline_never_touches_the_network() {
    let server = HubServer::start();
    server.add_repo(REPO, repo_with(Fault::None));
    let cache = tmp_dir("offline");
    let err = TextEmbedding::builder(MODEL)
        .cache_dir(cache.to_path_buf())
        .hub_options(options(&server))
        .local_files_only(true)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::NotCached(_)), "{err}");
    assert!(err.to_string().contains("offline"), "{err}");
    assert!(server.log().is_empty());
}

#[test]
fn concurrent_fetches_transfer_each_file_once() {
    let server = HubServer::start();
    server.add_repo(REPO, repo_with(Fault::None));
    let cache = tmp_dir("concurrent");
    let opts = options(&server);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| build(&cache, opts.clone()).map(|_| ())))
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    });
    assert_eq!(server.gets_of("model_optimized.onnx").len(), 1);
    assert_eq!(server.gets_of("tokenizer.json").len(), 1);
}

// ---- legacy .tar.gz models -------------------------------------------------------

/// A tar.gz with raw entries, names written as given (no validation by the builder).
enum Raw<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    /// A file whose header declares `size` bytes (zeros).
    Big(&'a str, u64),
}

fn tarball(entries: &[Raw<'_>]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (name, kind, data, link): (&str, tar::EntryType, &[u8], Option<&str>) = match e {
            Raw::File(n, d) => (n, tar::EntryType::Regular, d, None),
            Raw::Symlink(n, t) => (n, tar::EntryType::Symlink, b"", Some(t)),
            Raw::HardLink(n, t) => (n, tar::EntryType::Link, b"", Some(t)),
            Raw::Big(n, _) => (n, tar::EntryType::Regular, b"", None),
        };
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(t) = link {
            gnu.linkname[..t.len()].copy_from_slice(t.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(0o644);
        match e {
            Raw::Big(_, size) => {
                h.set_size(*size);
                h.set_cksum();
                b.append(&h, std::io::Read::take(std::io::repeat(0), *size))
                    .unwrap();
            }
            _ => {
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, data).unwrap();
            }
        }
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// A builder of a MiniLM-shaped model whose files are the `.tar.gz` at `url`.
fn archive_model(name: &str, url: String) -> embedkit::TextEmbeddingBuilder {
    let mut m = CustomTextModel::new(name, Pooling::Cls, true, ModelSource::url(url), 384);
    m.model_file = "model_optimized.onnx".into();
    TextEmbedding::from_description(m.into())
}

#[test]
fn a_legacy_archive_is_downloaded_and_unpacked() {
    let server = HubServer::start();
    let dir = model_dir("tiny:cls-384");
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let files: Vec<(String, Vec<u8>)> = [
        "model_optimized.onnx",
        "tokenizer.json",
        "tokenizer_config.json",
        "config.json",
        "special_tokens_map.json",
    ]
    .iter()
    .map(|f| (format!("archived-model/{f}"), read(f)))
    .collect();
    let entries: Vec<Raw<'_>> = files
        .iter()
        .map(|(n, d)| Raw::File(n.as_str(), d.as_slice()))
        .collect();
    server.add_plain("archived.tar.gz", tarball(&entries));
    let cache = tmp_dir("archive-ok");
    let model = archive_model(
        "embedkit-test/archived-model",
        format!("{}/files/archived.tar.gz", server.endpoint),
    )
    .cache_dir(&cache)
    .hub_options(options(&server))
    .build()
    .unwrap();
    assert_eq!(
        model.embed(&["hello hub"], None).unwrap()[0],
        reference_vector()
    );
    assert!(cache.join("archived-model/model_optimized.onnx").is_file());
    assert!(tree(&cache.join("tmp")).is_empty(), "{:?}", tree(&cache));
}

#[test]
fn hostile_archives_are_refused_and_write_nothing_outside() {
    let server = HubServer::start();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot",
            tarball(&[Raw::File("evil/../../../../../escaped-dotdot.txt", b"x")]),
        ),
        (
            "absolute",
            tarball(&[Raw::File("/tmp/embedkit-escaped-absolute.txt", b"x")]),
        ),
        (
            "symlink",
            tarball(&[
                Raw::Symlink("evil/link", "../../../../.."),
                Raw::File("evil/link/escaped-symlink.txt", b"x"),
            ]),
        ),
        ("abs-symlink", tarball(&[Raw::Symlink("evil/etc", "/etc")])),
        (
            "hardlink",
            tarball(&[Raw::HardLink("evil/passwd", "../../outside")]),
        ),
        ("bomb", tarball(&[Raw::Big("evil/huge.bin", 64 << 20)])),
    ];
    for (name, bytes) in cases {
        let file = format!("{name}.tar.gz");
        server.add_plain(&file, bytes);
        let root = tmp_dir(&format!("hostile-{name}"));
        let cache = root.join("cache");
        let mut opts = options(&server);
        opts.max_archive_bytes = 16 << 20;
        let err = archive_model(
            &format!("embedkit-test/evil-{name}"),
            format!("{}/files/{file}", server.endpoint),
        )
        .cache_dir(&cache)
        .hub_options(opts)
        .build()
        .unwrap_err()
        .to_string();
        assert!(err.contains("refused to extract"), "{name}: {err}");
        // Nothing beside the cache, nothing in /tmp, no model folder, no staging left.
        assert_eq!(
            tree(&root),
            tree(&root)
                .into_iter()
                .filter(|p| p.starts_with("cache"))
                .collect::<Vec<_>>()
        );
        assert!(!Path::new("/tmp/embedkit-escaped-absolute.txt").exists());
        assert!(!cache.join(format!("evil-{name}")).exists(), "{name}");
        assert!(
            tree(&cache.join("tmp")).is_empty(),
            "{name}: {:?}",
            tree(&cache)
        );
        assert!(!root.join("escaped-dotdot.txt").exists());
    }
}

#[test]
fn a_cache_in_huggingface_hubs_own_layout_is_found_offline() {
    // What huggingface_hub writes: blobs, snapshot symlinks, refs/main.
    let cache = tmp_dir("hf-layout");
    let src = model_dir("tiny:cls-384");
    let repo = repo_dir(&cache);
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(repo.join("snapshots").join(COMMIT)).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    for f in [
        "model_optimized.onnx",
        "tokenizer.json",
        "tokenizer_config.json",
        "config.json",
        "special_tokens_map.json",
    ] {
        let bytes = std::fs::read(src.join(f)).unwrap();
        let blob = sha256_hex(&bytes);
        std::fs::write(repo.join("blobs").join(&blob), &bytes).unwrap();
        std::os::unix::fs::symlink(
            Path::new("../../blobs").join(&blob),
            repo.join("snapshots").join(COMMIT).join(f),
        )
        .unwrap();
    }
    let model = TextEmbedding::builder(MODEL)
        .cache_dir(&cache)
        .local_files_only(true)
        .build()
        .unwrap();
    assert_eq!(
        model.embed(&["hello hub"], None).unwrap()[0],
        reference_vector()
    );
}

#[test]
fn a_model_with_external_data_loads_from_symlinks_in_the_cache() {
    // The seeded granite stand-in keeps its weights in onnx/model.onnx_data; in the cache
    // both ONNX files are symlinks into blobs/, which ONNX Runtime must accept.
    let dir = model_dir("tiny:builtin-384");
    let mut files = std::collections::HashMap::new();
    for (name, lfs) in [
        ("onnx/model.onnx", true),
        ("onnx/model.onnx_data", true),
        ("tokenizer.json", true),
        ("tokenizer_config.json", false),
        ("config.json", false),
        ("special_tokens_map.json", false),
    ] {
        let content = std::fs::read(dir.join(name)).unwrap();
        files.insert(
            name.to_string(),
            common::hub_server::ServedFile {
                content,
                lfs,
                fault: Fault::None,
            },
        );
    }
    let server = HubServer::start();
    server.add_repo(
        "onnx-community/granite-embedding-small-english-r2-ONNX",
        Repo {
            commit: COMMIT.into(),
            files,
            token: None,
            cdn: None,
        },
    );
    let name = "ibm-granite/granite-embedding-small-english-r2";
    let cache = tmp_dir("external-data");
    let from_cache = TextEmbedding::builder(name)
        .cache_dir(&cache)
        .hub_options(options(&server))
        .build()
        .unwrap();
    let snapshot = cache
        .join("models--onnx-community--granite-embedding-small-english-r2-ONNX/snapshots")
        .join(COMMIT);
    assert!(
        std::fs::symlink_metadata(snapshot.join("onnx/model.onnx_data"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let from_folder = TextEmbedding::builder(name)
        .specific_model_path(&dir)
        .build()
        .unwrap();
    assert_eq!(
        from_cache.embed(&["external data"], None).unwrap(),
        from_folder.embed(&["external data"], None).unwrap()
    );
}

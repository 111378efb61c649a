//! What the binary tells a user beside vectors: `embedkit env`, shell completions and man
//! pages for every command, and progress on a terminal.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::cli::{embedkit, minilm_dir, MINILM};
use crate::common::tmpdir;

/// `embedkit env --json` with the runtime named by ORT_DYLIB_PATH and a cache holding one
/// model of known size: every field a bug report needs, checked against what the test
/// itself finds (the file it pointed at, the CPU as std reports it, the bytes it wrote).
#[test]
fn env_reports_runtime_cpu_and_cache() {
    let (library, _) = embedkit::unstable::runtime::find_library(None)
        .expect("the ONNX Runtime library (make setup) is needed by this test");
    let cache = tmpdir("env-cache");
    let blobs = cache.join("models--org--tiny/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join("a"), vec![0u8; 1000]).unwrap();
    std::fs::write(blobs.join("b"), vec![0u8; 234]).unwrap();
    std::fs::create_dir_all(cache.join("models--org--tiny/snapshots/abc")).unwrap();
    let run = |lib: &std::path::Path, json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_embedkit"));
        cmd.args(["env", "--cache-dir"]).arg(&cache);
        if json {
            cmd.arg("--json");
        }
        cmd.env("ORT_DYLIB_PATH", lib).output().unwrap()
    };
    let out = run(&library, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["embedkit"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        r["runtime"]["version"],
        embedkit::unstable::runtime::ORT_VERSION,
        "{r}"
    );
    assert_eq!(r["runtime"]["library"], library.to_str().unwrap());
    assert_eq!(r["runtime"]["found_by"], "env_var");
    let providers = r["runtime"]["providers"].as_array().unwrap();
    assert!(providers.contains(&"CPUExecutionProvider".into()), "{r}");
    #[cfg(target_arch = "x86_64")]
    {
        assert_eq!(
            r["cpu"]["features"]["avx2"],
            std::is_x86_feature_detected!("avx2")
        );
        assert_eq!(
            r["cpu"]["features"]["avx512f"],
            std::is_x86_feature_detected!("avx512f")
        );
    }
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(r["cpu"]["logical_cores"], cores);
    assert_eq!(r["cache"]["models"], 1);
    assert_eq!(r["cache"]["bytes"], 1234);

    // A runtime that does not load is reported, with everything else, and is no failure.
    let out = run(
        std::path::Path::new("/nonexistent/libonnxruntime.so"),
        false,
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("onnxruntime   not loaded:") && text.contains("/nonexistent"),
        "{text}"
    );
    assert!(text.contains("(1 model, 0.0 MB)"), "{text}");
    let _ = std::fs::remove_dir_all(&cache);
}

/// Completions and man pages come from the same clap definitions as the commands: every
/// command is in them, the bash script parses, and each command has its page.
#[test]
fn completions_and_man_pages_cover_every_command() {
    let help = embedkit(&["--help"], b"");
    let help = String::from_utf8(help.stdout).unwrap();
    // The commands as --help lists them ("  name  description").
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect();
    assert!(
        commands.len() >= 12 && commands.contains(&"env".to_string()),
        "{commands:?}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let out = embedkit(&["completions", shell], b"");
        assert!(out.status.success());
        let script = String::from_utf8(out.stdout).unwrap();
        for c in &commands {
            assert!(script.contains(c.as_str()), "{shell} completions miss {c}");
        }
    }
    let bash = embedkit(&["completions", "bash"], b"").stdout;
    let check = Command::new("bash")
        .args(["-n", "/dev/stdin"])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(&bash)?;
            c.wait()
        })
        .unwrap();
    assert!(check.success(), "the bash completion script does not parse");

    let dir = tmpdir("man");
    let out = embedkit(&["man", "--dir", dir.to_str().unwrap()], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in std::iter::once("embedkit".to_string())
        .chain(commands.iter().map(|c| format!("embedkit-{c}")))
    {
        let text = std::fs::read_to_string(dir.join(format!("{page}.1")))
            .unwrap_or_else(|e| panic!("{page}.1: {e}"));
        assert!(
            text.contains(&format!(".TH {page} 1")),
            "{page}.1 has no title"
        );
    }
    let main = embedkit(&["man"], b"").stdout;
    assert!(String::from_utf8(main).unwrap().contains(".SH SUBCOMMANDS"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `args` with stderr on a pseudo-terminal (80 columns) and stdout piped; returns
/// the exit status and everything the terminal received.
fn run_with_terminal_stderr(args: &[&str]) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty fills two new descriptors, which the OwnedFds below then own.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty failed");
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut child = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    // The command's Stdio held the only slave descriptor besides the child's: once the
    // child exits, reading the master ends (EIO on Linux).
    let reader = std::thread::spawn(move || {
        let mut file = std::fs::File::from(master);
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    (status, reader.join().unwrap())
}

/// On a terminal, a file input shows a bar with the total, a rate and an ETA, then a
/// summary; piped stderr gets only the summary; --quiet gets nothing.
#[test]
fn progress_shows_total_rate_and_eta_on_a_terminal() {
    let dir = tmpdir("progress");
    let input = dir.join("docs.txt");
    let docs: String = (0..3000)
        .map(|i| format!("document number {i}\n"))
        .collect();
    std::fs::write(&input, docs).unwrap();
    let out = dir.join("out.jsonl");
    let model = minilm_dir();
    let args = [
        "embed",
        "--model",
        MINILM,
        "--model-path",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    let (status, screen) = run_with_terminal_stderr(&args);
    assert!(status.success(), "{screen}");
    assert!(
        screen.contains("/3,000 documents"),
        "no total shown: {screen:?}"
    );
    assert!(
        screen.contains("/s") && screen.contains("ETA"),
        "{screen:?}"
    );
    assert!(
        screen.contains("embedkit: 3000 documents in "),
        "{screen:?}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 3000);

    let piped = embedkit(&args, b"");
    assert!(piped.status.success());
    let stderr = String::from_utf8(piped.stderr).unwrap();
    assert!(!stderr.contains("ETA"), "a bar on a pipe: {stderr:?}");
    assert!(
        stderr.starts_with("embedkit: 3000 documents in "),
        "{stderr:?}"
    );
    assert!(stderr.contains(out.to_str().unwrap()), "{stderr:?}");

    let mut quiet_args = args.to_vec();
    quiet_args.push("--quiet");
    let (status, screen) = run_with_terminal_stderr(&quiet_args);
    assert!(status.success());
    assert_eq!(screen, "", "--quiet printed something");
    let _ = std::fs::remove_dir_all(&dir);
}

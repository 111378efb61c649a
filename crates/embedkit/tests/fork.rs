//! A model used before `fork()` works in the child (issue 21): the test runs in a child
//! process of its own (this binary, re-run), which embeds, forks, and checks that its
//! child gives the same vectors within a deadline.

use crate::common;

use std::time::{Duration, Instant};

use embedkit::TextEmbedding;

#[test]
fn a_forked_child_embeds_what_its_parent_did() {
    const TEST: &str = "a_forked_child_embeds_what_its_parent_did";
    if common::child_workload().is_none() {
        // The scenario forks; it runs in a process of its own, not in the test harness.
        let peak = common::child_peak_rss_mb(module_path!(), TEST, "fork");
        assert!(peak > 0);
        return;
    }
    let model = TextEmbedding::builder("sentence-transformers/all-MiniLM-L6-v2")
        .specific_model_path(common::model_dir("setup:all-MiniLM-L6-v2-int8"))
        .threads(2)
        .build()
        .unwrap();
    let texts = common::inputs("corpus");
    let texts = &texts[..texts.len().min(40)];
    // Enough texts for parallel tokenization and the session pool to have run.
    let before = model.embed(texts, None).unwrap();
    // SAFETY: the child only embeds and exits; the parent waits for it.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // A lone text (one batch: the all-threads session), then all of them (the pool).
        let one = model.embed(&texts[..1], None);
        let all = model.embed(texts, None);
        let same = match (one, all) {
            (Ok(one), Ok(all)) => {
                common::max_abs_diff(&before[..1], &one).0 <= 1e-6
                    && common::max_abs_diff(&before, &all).0 <= 1e-6
            }
            _ => false,
        };
        // SAFETY: leaves the child at once, without running the harness's exit code.
        unsafe { libc::_exit(if same { 0 } else { 3 }) };
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child without blocking.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child hung for 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(libc::WIFEXITED(status), "the child died: status {status}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "the child's vectors differ");
    // The parent still works after the fork.
    assert_eq!(model.embed(texts, None).unwrap(), before);
    common::report_peak_rss();
}

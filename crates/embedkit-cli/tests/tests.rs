//! The integration tests, one binary (ripgrep's layout): each file below is a module, and
//! `common` is compiled once for all of them.

mod common;

mod cli;
mod cli_families;
mod cli_surface;
mod corpus;
mod corpus_memory;
mod format_steps;
mod formats;
mod gpu_build;
mod hub_cli;
mod m3;
mod output_files;
mod resume;
mod serve;
mod serve_compat;
mod serve_config;
mod serve_families;
mod serve_http;
mod serve_safety;
mod twin;

/// Every file beside this one is one of its modules: with `autotests = false` cargo builds
/// no test file on its own, so a file left out of the list above would never run.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let listed: Vec<&str> = include_str!("tests.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';'))
        .collect();
    for entry in std::fs::read_dir(&here).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let is_module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
        if is_module && name != "tests" {
            assert!(
                listed.contains(&name.as_str()),
                "{} is not a module of tests.rs: its tests never run",
                path.display()
            );
        }
    }
}

//! The integration tests, one binary (ripgrep's layout): each file below is a module, and
//! `common` is compiled once for all of them.

mod common;

mod cli;
mod cli_families;
mod corpus;
mod corpus_memory;
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

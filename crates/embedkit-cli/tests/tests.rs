//! The integration tests, one binary (ripgrep's layout): each file below is a module, and
//! `common` is compiled once for all of them.

mod common;

mod cli;
mod corpus;
mod corpus_memory;
mod formats;
mod gpu_build;
mod hub_cli;
mod m3;
mod resume;
mod serve;
mod serve_compat;
mod serve_safety;

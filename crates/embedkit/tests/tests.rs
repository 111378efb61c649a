//! The integration tests, one binary (ripgrep's layout): each file below is a module, and
//! `common` is compiled once for all of them.

mod common;

mod cache_safety;
mod fork;
mod handle;
mod hostile_models;
mod hub;
mod image_oracle;
mod int8;
mod interop;
mod late_oracle;
mod m3_oracle;
mod multimodal_oracle;
mod oracle;
mod rerank_oracle;
mod resource_bounds;
mod sparse_oracle;
mod text_api;

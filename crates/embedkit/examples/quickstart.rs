//! The README's Rust quick start: two texts embedded with all-MiniLM-L6-v2 from the folder
//! `make setup` fills (`~/.cache/embedkit/models/all-MiniLM-L6-v2-int8`).
//!
//! cargo run -p embedkit --example quickstart

fn main() -> Result<(), embedkit::Error> {
    let dir = embedkit::unstable::runtime::embedkit_home().join("models/all-MiniLM-L6-v2-int8");
    let model = embedkit::TextEmbedding::builder("sentence-transformers/all-MiniLM-L6-v2")
        .specific_model_path(dir)
        .build()?;
    let vectors = model.embed(&["hello world", "embedkit in Rust"], None)?;
    println!("{} vectors of {} numbers", vectors.len(), vectors[0].len());
    Ok(())
}

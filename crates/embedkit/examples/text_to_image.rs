//! Text-to-image search over a folder of images with CLIP: the images and the query go
//! through the two towers of one model, and the images are ranked by cosine similarity.
//!
//! cargo run --release -p embedkit --example text_to_image -- "a portrait of a woman" [DIR]
//!
//! DIR defaults to the repo's sample images (tests/data/images). The models come from the
//! cache or the Hugging Face hub (Qdrant/clip-ViT-B-32-vision and -text); set
//! EMBEDKIT_CLIP_VISION / EMBEDKIT_CLIP_TEXT to folders holding their files instead.

use std::path::{Path, PathBuf};

use embedkit::{ImageEmbedding, TextEmbedding};

/// The images of `dir` ranked for `query`: (path, cosine similarity), best first.
pub fn rank(
    query: &str,
    dir: &Path,
    vision_dir: Option<PathBuf>,
    text_dir: Option<PathBuf>,
) -> embedkit::Result<Vec<(PathBuf, f32)>> {
    let mut vision = ImageEmbedding::builder("Qdrant/clip-ViT-B-32-vision");
    if let Some(d) = vision_dir {
        vision = vision.specific_model_path(d);
    }
    let mut text = TextEmbedding::builder("Qdrant/clip-ViT-B-32-text");
    if let Some(d) = text_dir {
        text = text.specific_model_path(d);
    }
    let (vision, text) = (vision.build()?, text.build()?);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| embedkit::Error::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let images = vision.embed(paths.clone(), None)?;
    let query = text.embed(&[query], None)?.remove(0);
    let mut ranked: Vec<(PathBuf, f32)> = paths
        .into_iter()
        .zip(&images)
        .map(|(p, v)| (p, v.iter().zip(&query).map(|(a, b)| a * b).sum()))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(ranked)
}

#[allow(dead_code)]
fn main() -> embedkit::Result<()> {
    let mut args = std::env::args().skip(1);
    let query = args
        .next()
        .unwrap_or_else(|| "a portrait of a woman in uniform".into());
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/images"));
    let env_dir = |k: &str| std::env::var_os(k).map(PathBuf::from);
    for (path, score) in rank(
        &query,
        &dir,
        env_dir("EMBEDKIT_CLIP_VISION"),
        env_dir("EMBEDKIT_CLIP_TEXT"),
    )? {
        println!("{score:+.4}  {}", path.display());
    }
    Ok(())
}

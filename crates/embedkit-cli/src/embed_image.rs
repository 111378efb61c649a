//! `embedkit embed-image FILES...`: one `{"id": FILE, "embedding": [...]}` record per
//! image file, in the order given, in any output format, resumable as `embed`.

use std::path::PathBuf;

use clap::Args;
use embedkit::{Capability, ImageInput, Operations};

use crate::corpus::Id;
use crate::job::Output;
use crate::vectors::{DenseArgs, OutputFormat};
use crate::{output, ModelArgs};

#[derive(Args, Debug)]
pub struct EmbedImageArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Write to FILE (default: stdout), JSON Lines, or by extension .parquet or .npy (ids
    /// beside it in NAME.ids.jsonl); it appears only when complete.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The output's format [default: by extension: .parquet, .npy; else JSON Lines].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub output_format: Option<OutputFormat>,
    /// Continue an interrupted or failed run into the same --output: the files already
    /// written are skipped.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub dense: DenseArgs,
    /// No progress display and no summary line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Image files (PNG, JPEG, WebP, GIF).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: EmbedImageArgs) -> anyhow::Result<()> {
    let format = OutputFormat::of(args.output.as_deref(), args.output_format);
    let mut out = Output::open(
        args.output.as_deref(),
        format,
        args.resume,
        args.dense.shape(),
    )?;
    let id_of = |f: &PathBuf| Id::Str(f.display().to_string());
    // The files an earlier run wrote are the first ones given, by name.
    let done = std::mem::take(&mut out.done);
    for (i, id) in done.iter().enumerate() {
        let same = args.files.get(i).map(id_of).is_some_and(|f| f == *id);
        anyhow::ensure!(
            same,
            "the output holds {} images, but its image {i} is not the {i}th file given; \
             --resume continues the same command",
            done.len()
        );
    }
    let files: Vec<PathBuf> = args.files[done.len()..].to_vec();
    let model = args.model.load(
        "Qdrant/clip-ViT-B-32-vision",
        serde_json::Value::Null,
        Capability::DenseImage,
    )?;
    let call = args.dense.call(&model)?;
    let progress = output::Progress {
        noun: "images",
        ..output::Progress::new(Some(args.files.len() as u64), args.quiet)
    };
    let ids: Vec<Id> = files.iter().map(id_of).collect();
    let images = files.into_iter().map(|f| Ok(ImageInput::from(f)));
    let vectors = model.embed_images_iter(images, &call);
    let records = ids
        .into_iter()
        .zip(vectors)
        .map(|(id, v)| v.map(|v| (id, args.dense.convert(v))));
    out.write(progress, records)
}

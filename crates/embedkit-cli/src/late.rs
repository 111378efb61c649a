//! `embedkit late`: documents or queries in, JSON Lines of token-vector matrices out (or
//! their fixed-size MUVERA encodings), in input order.

use anyhow::Context;
use clap::Args;
use embedkit::{LateInteractionTextEmbedding, Muvera, MuveraOptions, Purpose};

use crate::{input, output, IoArgs, ModelArgs};

#[derive(Args, Debug)]
pub struct LateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub io: IoArgs,
    /// Embed as queries (`query_embed`: query marker and mask expansion).
    #[arg(long)]
    pub query: bool,
    /// Write MUVERA's fixed-size encoding `{"embedding": [...]}` instead of the matrix.
    #[arg(long)]
    pub muvera: bool,
    /// MUVERA: SimHash hyperplanes per repetition (2^k_sim clusters).
    #[arg(long, default_value_t = 5)]
    pub k_sim: u32,
    /// MUVERA: dimensions each cluster is projected to.
    #[arg(long, default_value_t = 16)]
    pub dim_proj: usize,
    /// MUVERA: repetitions.
    #[arg(long, default_value_t = 20)]
    pub r_reps: usize,
    /// MUVERA: seed of the random matrices (the same seed as fastembed's gives the same
    /// encodings).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub fn run(args: LateArgs) -> anyhow::Result<()> {
    let docs = input::documents(args.io.texts, args.io.input.as_deref())?;
    let progress = output::Progress::new(docs.total, args.io.quiet);
    let name = args.model.name("colbert-ir/colbertv2.0");
    let load = args.model.load_options()?;
    let model = LateInteractionTextEmbedding::builder(name)
        .load_options(load)
        .build()
        .with_context(|| format!("loading model {name}"))?;
    let purpose = if args.query {
        Purpose::Query
    } else {
        Purpose::Document
    };
    let matrices = model.try_embed_iter(docs, None, purpose);
    if !args.muvera {
        return output::write_jsonl(args.io.output.as_deref(), progress, matrices, |m| {
            let rows: Vec<Vec<f32>> = m.outer_iter().map(|r| r.to_vec()).collect();
            serde_json::to_string(&serde_json::json!({ "embeddings": rows }))
        });
    }
    let muvera = Muvera::from_multivector_model(
        &model,
        MuveraOptions {
            k_sim: args.k_sim,
            dim_proj: args.dim_proj,
            r_reps: args.r_reps,
            random_seed: args.seed,
        },
    )?;
    let query = args.query;
    let encodings = matrices.map(|m| {
        let m = m?;
        if query {
            muvera.process_query(m.view())
        } else {
            muvera.process_document(m.view())
        }
    });
    output::write_jsonl(args.io.output.as_deref(), progress, encodings, |v| {
        let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
        serde_json::to_string(&serde_json::json!({ "embedding": v }))
    })
}

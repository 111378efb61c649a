//! `embedkit late`: documents or queries in, JSON Lines of token-vector matrices out (or
//! their fixed-size MUVERA encodings), in input order.

use clap::Args;
use embedkit::{CallOptions, Capability, MuveraOptions, Operations, Purpose};

use crate::vectors::{Shape, Vector};
use crate::{job, JobArgs};
use embedkit::postprocess::VectorType;

#[derive(Args, Debug)]
pub struct LateArgs {
    #[command(flatten)]
    pub job: JobArgs,
    #[command(flatten)]
    pub cut: crate::TextCutArgs,
    /// Embed as queries (`query_embed`: query marker and mask expansion).
    #[arg(long)]
    pub query: bool,
    /// Write MUVERA's fixed-size encoding `{"embedding": [...]}` instead of the matrix.
    #[arg(long)]
    pub muvera: bool,
    /// MUVERA: SimHash hyperplanes per repetition (2^k_sim clusters).
    #[arg(long, requires = "muvera", default_value_t = 5)]
    pub k_sim: u32,
    /// MUVERA: dimensions each cluster is projected to.
    #[arg(long, requires = "muvera", default_value_t = 16)]
    pub dim_proj: usize,
    /// MUVERA: repetitions.
    #[arg(long, requires = "muvera", default_value_t = 20)]
    pub r_reps: usize,
    /// MUVERA: seed of the random matrices (the same seed as fastembed's gives the same
    /// encodings).
    #[arg(long, requires = "muvera", default_value_t = 42)]
    pub seed: u64,
}

pub fn run(mut args: LateArgs) -> anyhow::Result<()> {
    // MUVERA encodings are fixed-width vectors; matrices are not.
    let shape = if args.muvera {
        Shape::Dense(VectorType::Float32)
    } else {
        Shape::Multi
    };
    let (job, docs) = job::start(&mut args.job.io, &args.job.corpus, shape)?;
    let model = args.job.model.load(
        "colbert-ir/colbertv2.0",
        serde_json::Value::Null,
        Capability::MultiVectorText,
    )?;
    let purpose = if args.query {
        Purpose::Query
    } else {
        Purpose::Document
    };
    let call = args.cut.apply(CallOptions::new().purpose(purpose));
    if !args.muvera {
        let matrices = model.embed_multi_iter(docs, &call);
        return job.finish(matrices.map(|m| m.map(Vector::Multi)));
    }
    let call = call.muvera(Some(MuveraOptions {
        k_sim: args.k_sim,
        dim_proj: args.dim_proj,
        r_reps: args.r_reps,
        random_seed: args.seed,
    }));
    job.finish(
        model
            .embed_muvera_iter(docs, &call)
            .map(|v| v.map(Vector::Dense)),
    )
}

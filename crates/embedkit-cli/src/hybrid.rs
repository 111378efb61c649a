//! `embedkit hybrid`: documents in, each one's dense vector, sparse vector and token
//! vectors out from one pass of a model that computes them together (BGE-M3), as one
//! record: what a hybrid Qdrant collection stores (`embedding`, `indices`/`values`,
//! `embeddings`).

use clap::{Args, ValueEnum};
use embedkit::{Capability, Operations, Purpose};

use embedkit::postprocess::VectorType;

use crate::vectors::{DenseArgs, PruneArgs, Shape, Vector};
use crate::{job, JobArgs};

/// One output a record can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    /// `embedding`: the dense vector.
    Dense,
    /// `indices` and `values`: the sparse (lexical) vector.
    Sparse,
    /// `embeddings`: one vector per token (ColBERT).
    Multi,
}

impl Part {
    fn capability(self) -> Capability {
        match self {
            Part::Dense => Capability::DenseText,
            Part::Sparse => Capability::SparseText,
            Part::Multi => Capability::MultiVectorText,
        }
    }
}

#[derive(Args, Debug)]
pub struct HybridArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// The outputs each record holds.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "dense,sparse,multi"
    )]
    pub outputs: Vec<Part>,
    /// Embed as queries (`query_embed`; BGE-M3 embeds queries as documents).
    #[arg(long)]
    pub query: bool,
    /// Dense output: --dimensions, --normalize; --output-dtype int8/binary when the
    /// records hold only the dense vector.
    #[command(flatten)]
    pub dense: DenseArgs,
    /// Sparse output only.
    #[command(flatten)]
    pub prune: PruneArgs,
    #[command(flatten)]
    pub cut: crate::TextCutArgs,
}

pub fn run(mut args: HybridArgs) -> anyhow::Result<()> {
    let mut wanted: Vec<Capability> = Vec::new();
    for c in args.outputs.iter().map(|p| p.capability()) {
        if !wanted.contains(&c) {
            wanted.push(c);
        }
    }
    let dense_only = wanted == [Capability::DenseText];
    refuse_unused_flags(&args, &wanted, dense_only)?;
    // Records of the dense vector alone are fixed-width rows (`.npy` fits them).
    let shape = if dense_only {
        args.dense.shape()
    } else {
        Shape::Hybrid
    };
    let (job, docs) = job::start(&mut args.job.io, &args.job.corpus, shape)?;
    let model = args
        .job
        .model
        .load_all("BAAI/bge-m3", serde_json::Value::Null, &wanted)?;
    let purpose = if args.query {
        Purpose::Query
    } else {
        Purpose::Document
    };
    // --dimensions is checked against the model before the first document is read.
    let call = args.dense.call(&model)?.purpose(purpose);
    let call = args.prune.apply(args.cut.apply(call));
    let outputs = model.embed_all_iter(docs, &wanted, &call);
    if dense_only {
        let dense = args.dense.clone();
        return job.finish(outputs.map(move |o| {
            let v = o?.dense.ok_or_else(|| {
                embedkit::Error::Internal("the model gave no dense vector".into())
            })?;
            Ok(dense.convert(v))
        }));
    }
    job.finish(outputs.map(|o| o.map(Vector::Hybrid)))
}

/// A flag for an output the records do not hold would be ignored: refused before work,
/// as a usage error (exit 2).
fn refuse_unused_flags(
    args: &HybridArgs,
    wanted: &[Capability],
    dense_only: bool,
) -> anyhow::Result<()> {
    let d = &args.dense;
    if !wanted.contains(&Capability::DenseText) && (d.dimensions.is_some() || d.normalize) {
        return Err(usage(
            "--dimensions and --normalize shape the dense output; add dense to --outputs",
        ));
    }
    if !dense_only && d.output_dtype != VectorType::Float32 {
        return Err(usage(
            "--output-dtype applies to records of the dense vector alone (--outputs dense)",
        ));
    }
    let p = &args.prune;
    if !wanted.contains(&Capability::SparseText)
        && (p.top_terms.is_some() || p.min_weight.is_some())
    {
        return Err(usage(
            "--top-terms and --min-weight prune the sparse output; add sparse to --outputs",
        ));
    }
    Ok(())
}

fn usage(message: &str) -> anyhow::Error {
    embedkit::Error::InvalidArgument(message.into()).into()
}

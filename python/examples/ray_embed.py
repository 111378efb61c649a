"""Embed a text corpus with embedkit inside Ray Data and write the vectors to Parquet.

Each Ray actor loads the model once and embeds the batches Ray hands it; Ray spreads the
actors over the cluster's CPUs (or nodes) and streams the file through them.

    python python/examples/ray_embed.py --input corpus.txt --output vectors/ \
        --model sentence-transformers/all-MiniLM-L6-v2 --model-path DIR --actors 2

With no RAY_ADDRESS in the environment this starts a local Ray cluster; with
RAY_ADDRESS=ray://head:10001 (or `auto` on a cluster node) the same job runs on a
multi-node cluster, as long as every node can install embedkit and read --model-path
(or reach the Hugging Face hub / a shared cache_dir).
"""

import argparse
import os

import numpy as np
import ray


class Embedder:
    """A Ray actor holding one model for its lifetime."""

    def __init__(self, model: str, model_path: str | None, threads: int):
        from embedkit import TextEmbedding

        self.model = TextEmbedding(model, specific_model_path=model_path, threads=threads)

    def __call__(self, batch: dict) -> dict:
        texts = [str(t) for t in batch["text"]]
        vectors = np.stack(list(self.model.embed(texts)))
        return {"text": batch["text"], "embedding": list(vectors)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True, help="a text file, one document per line")
    ap.add_argument("--output", required=True, help="a folder for the Parquet files")
    ap.add_argument("--model", default="BAAI/bge-small-en-v1.5")
    ap.add_argument("--model-path", default=None)
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--threads-per-actor", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()

    if os.environ.get("RAY_ADDRESS"):
        ray.init()
    else:
        # A local cluster: one logical CPU per actor thread plus one for the tasks that
        # read and write, so the actors cannot take every slot and stall the reads.
        ray.init(num_cpus=args.actors * args.threads_per_actor + 1, include_dashboard=False)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ds = ray.data.read_text(args.input)
    ds = ds.map_batches(
        Embedder,
        fn_constructor_kwargs={"model": args.model, "model_path": args.model_path,
                               "threads": args.threads_per_actor},
        batch_size=args.batch_size,
        concurrency=args.actors,
        num_cpus=args.threads_per_actor,
        batch_format="numpy",
    )
    ds.write_parquet(args.output)
    print(f"wrote the vectors to {args.output}")


if __name__ == "__main__":
    main()

"""Runs the reference implementation, fastembed 0.9.1, on the test inputs and writes what
it outputs: tests/expected/cases.json (one entry per case) and one raw little-endian
float32 file per case ([n_inputs, dim], row-major). The Rust tests read both.

Model folders are named symbolically in cases.json so that the tests can find them on any
machine: `shared:NAME` (../shared/models/NAME), `setup:NAME` (<embedkit home>/models/NAME,
filled by `make setup`) and `tiny:NAME` (the seeded models of make_models.py).

usage: gen_expected.py --shared DIR --setup DIR --tiny DIR --data tests/data --out tests/expected
"""

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import fastembed
from fastembed import SparseTextEmbedding, TextEmbedding
from fastembed.common.model_description import ModelSource, PoolingType

def cut_at(model, side: str) -> None:
    """fastembed's `model` with its tokenizer cutting over-long texts at `side` (TEI's
    truncation_direction), at the length fastembed set."""
    tokenizer = model.model.tokenizer
    tokenizer.enable_truncation(max_length=tokenizer.truncation["max_length"], direction=side)


CASES = [
    # real models
    dict(name="minilm-fp32-edge", model="sentence-transformers/all-MiniLM-L6-v2",
         dir="shared:all-MiniLM-L6-v2-fp32", inputs="edge"),
    dict(name="minilm-fp32-query", model="sentence-transformers/all-MiniLM-L6-v2",
         dir="shared:all-MiniLM-L6-v2-fp32", inputs="edge", method="query_embed"),
    dict(name="minilm-fp32-corpus", model="sentence-transformers/all-MiniLM-L6-v2",
         dir="shared:all-MiniLM-L6-v2-fp32", inputs="corpus", batch_size=16),
    # TEI's truncation_direction=left: fastembed's own pipeline with its tokenizer set to
    # cut at the left (the edge inputs hold two texts far over 512 tokens).
    dict(name="minilm-fp32-left", model="sentence-transformers/all-MiniLM-L6-v2",
         dir="shared:all-MiniLM-L6-v2-fp32", inputs="edge", truncation="left"),
    dict(name="minilm-int8-edge", model="sentence-transformers/all-MiniLM-L6-v2",
         dir="setup:all-MiniLM-L6-v2-int8", inputs="edge"),
    dict(name="minilm-int8-passage", model="sentence-transformers/all-MiniLM-L6-v2",
         dir="setup:all-MiniLM-L6-v2-int8", inputs="edge", method="passage_embed"),
    # seeded models, one per pipeline of the registry
    dict(name="cls-bge-small", model="BAAI/bge-small-en-v1.5", dir="tiny:cls-384", inputs="edge"),
    dict(name="cls-bge-base-trunc16", model="BAAI/bge-base-en-v1.5",
         dir="tiny:cls-768-trunc16-notype", inputs="edge"),
    dict(name="mean-nomic", model="nomic-ai/nomic-embed-text-v1.5", dir="tiny:mean-768", inputs="edge"),
    dict(name="mean-nomic-query", model="nomic-ai/nomic-embed-text-v1.5", dir="tiny:mean-768",
         inputs="edge", method="query_embed"),
    dict(name="mean-paraphrase-trunc128", model="sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
         dir="tiny:mean-384-trunc128", inputs="edge"),
    dict(name="meannorm-jina2-small", model="jinaai/jina-embeddings-v2-small-en",
         dir="tiny:meannorm-512-notype", inputs="edge"),
    dict(name="lasttoken-qwen3", model="Qwen/Qwen3-Embedding-0.6B-Q", dir="tiny:lasttoken-1024-left",
         inputs="edge"),
    dict(name="builtin-granite", model="ibm-granite/granite-embedding-small-english-r2",
         dir="tiny:builtin-384", inputs="edge"),
    dict(name="clip-text", model="Qdrant/clip-ViT-B-32-text", dir="tiny:clip-512", inputs="edge"),
    dict(name="pooled2d-jina-clip", model="jinaai/jina-clip-v1", dir="tiny:pooled2d-768", inputs="edge"),
    dict(name="siglip2-text", model="google/siglip2-base-patch16-224", dir="tiny:siglip-768", inputs="edge"),
    dict(name="jina3-embed", model="jinaai/jina-embeddings-v3", dir="tiny:jina3-1024", inputs="edge"),
    dict(name="jina3-query", model="jinaai/jina-embeddings-v3", dir="tiny:jina3-1024", inputs="edge",
         method="query_embed"),
    dict(name="jina3-passage", model="jinaai/jina-embeddings-v3", dir="tiny:jina3-1024", inputs="edge",
         method="passage_embed"),
    dict(name="jina3-task3", model="jinaai/jina-embeddings-v3", dir="tiny:jina3-1024", inputs="edge",
         task_id=3),
    dict(name="static-potion", model="minishlab/potion-base-8M", dir="tiny:static-256", inputs="edge"),
    dict(name="static-potion-corpus", model="minishlab/potion-base-8M", dir="tiny:static-256",
         inputs="corpus", batch_size=64),
    dict(name="static-mapped", model="minishlab/potion-retrieval-32M", dir="tiny:static-512-mapped",
         inputs="edge"),
    # add_custom_model, one per pooling type
    dict(name="custom-cls", model="embedkit-test/custom-cls", dir="tiny:cls-384", inputs="edge",
         custom=dict(pooling="CLS", normalization=True, dim=384, model_file="model_optimized.onnx")),
    dict(name="custom-mean-raw", model="embedkit-test/custom-mean", dir="tiny:mean-768", inputs="edge",
         custom=dict(pooling="MEAN", normalization=False, dim=768, model_file="onnx/model.onnx")),
    dict(name="custom-lasttoken", model="embedkit-test/custom-last", dir="tiny:lasttoken-1024-left",
         inputs="edge",
         custom=dict(pooling="LAST_TOKEN", normalization=True, dim=1024,
                     model_file="onnx/model_quantized.onnx")),
    dict(name="custom-disabled-output", model="embedkit-test/custom-disabled", dir="tiny:builtin-384",
         inputs="edge",
         custom=dict(pooling="DISABLED", normalization=False, dim=384, model_file="onnx/model.onnx",
                     additional_files=["onnx/model.onnx_data"], output_name="sentence_embedding")),
]


SPARSE_CASES = [
    dict(name="splade-tiny-edge", model="prithivida/Splade_PP_en_v1", dir="shared:splade-tiny", inputs="edge"),
    dict(name="splade-tiny-query", model="prithivida/Splade_PP_en_v1", dir="shared:splade-tiny", inputs="edge",
         method="query_embed"),
    dict(name="splade-seeded", model="prithvida/Splade_PP_en_v1", dir="tiny:mlm-30522", inputs="edge"),
    dict(name="if-splade-doc", model="opensearch-project/opensearch-neural-sparse-encoding-doc-v3-gte",
         dir="tiny:mlm-30522", inputs="edge"),
    dict(name="if-splade-query", model="opensearch-project/opensearch-neural-sparse-encoding-doc-v3-gte",
         dir="tiny:mlm-30522", inputs="edge", method="query_embed"),
]


BM25_LANGUAGES = ["arabic", "danish", "dutch", "english", "finnish", "french", "german", "greek",
                  "hungarian", "italian", "norwegian", "portuguese", "romanian", "russian", "spanish",
                  "swedish", "tamil", "turkish"]
for _lang in BM25_LANGUAGES:
    for _method in ("embed", "query_embed"):
        SPARSE_CASES.append(dict(name=f"bm25-{_lang}-{_method}", model="Qdrant/bm25", dir="tiny:bm25",
                                 inputs=f"lang:{_lang}", method=_method, options={"language": _lang}))
SPARSE_CASES += [
    dict(name="bm42-edge", model="Qdrant/bm42-all-minilm-l6-v2-attentions", dir="shared:all-MiniLM-L6-v2-fp32",
         inputs="edge"),
    dict(name="bm42-corpus", model="Qdrant/bm42-all-minilm-l6-v2-attentions", dir="shared:all-MiniLM-L6-v2-fp32",
         inputs="corpus", batch_size=16),
    dict(name="bm42-stopwords-alpha", model="Qdrant/bm42-all-minilm-l6-v2-attentions", dir="tiny:bm42",
         inputs="lang:english", options={"alpha": 0.8}),
    dict(name="bm42-query", model="Qdrant/bm42-all-minilm-l6-v2-attentions", dir="tiny:bm42",
         inputs="edge", method="query_embed"),
    dict(name="bm25-edge", model="Qdrant/bm25", dir="tiny:bm25", inputs="edge"),
    dict(name="bm25-corpus-query", model="Qdrant/bm25", dir="tiny:bm25", inputs="corpus", method="query_embed"),
    dict(name="bm25-no-stemmer", model="Qdrant/bm25", dir="tiny:bm25", inputs="lang:english",
         options={"disable_stemmer": True}),
    dict(name="bm25-custom-stopwords", model="Qdrant/bm25", dir="tiny:bm25", inputs="lang:english",
         options={"stopwords": ["The", "in", "OF"]}),
    dict(name="bm25-max-length", model="Qdrant/bm25", dir="tiny:bm25", inputs="lang:german",
         options={"language": "german", "token_max_length": 6}),
    dict(name="bm25-params", model="Qdrant/bm25", dir="tiny:bm25", inputs="corpus",
         options={"k": 0.9, "b": 0.4, "avg_len": 60.0}),
    dict(name="minicoil-edge", model="Qdrant/minicoil-v1", dir="tiny:minicoil", inputs="edge"),
    dict(name="minicoil-corpus", model="Qdrant/minicoil-v1", dir="tiny:minicoil", inputs="corpus",
         batch_size=16),
    dict(name="minicoil-query", model="Qdrant/minicoil-v1", dir="tiny:minicoil", inputs="edge",
         method="query_embed"),
    dict(name="minicoil-corpus-query", model="Qdrant/minicoil-v1", dir="tiny:minicoil", inputs="corpus",
         method="query_embed"),
    dict(name="minicoil-params", model="Qdrant/minicoil-v1", dir="tiny:minicoil", inputs="lang:english",
         options={"k": 0.9, "b": 0.4, "avg_len": 60.0}),
]


def run_sparse(roots: dict, inputs: dict, args) -> None:
    entries = []
    multilingual = json.loads((args.data / "multilingual.json").read_text())
    for lang, texts in multilingual.items():
        inputs[f"lang:{lang}"] = texts
    for case in SPARSE_CASES:
        model_dir = resolve(case["dir"], roots)
        options = dict(case.get("options", {}))
        if "stopwords" in options:
            options["stopwords"] = set(options["stopwords"])
        model = SparseTextEmbedding(case["model"], specific_model_path=str(model_dir), threads=2, **options)
        texts = inputs[case["inputs"]]
        method = case.get("method", "embed")
        kwargs = {"batch_size": case["batch_size"]} if "batch_size" in case else {}
        results = [
            {"indices": [int(i) for i in e.indices], "values": [float(v) for v in e.values]}
            for e in getattr(model, method)(texts, **kwargs)
        ]
        if case["inputs"] == "corpus":
            results = results[:200]  # keeps the expected file small
        desc = next(d for d in SparseTextEmbedding._list_supported_models() if d.model == case["model"])
        entries.append({
            **case,
            "method": method,
            "results": results,
            "token_count": model.token_count(texts),
            "model_file": desc.model_file,
            "model_file_sha256": hashlib.sha256((model_dir / desc.model_file).read_bytes()).hexdigest(),
        })
        print(f"{case['name']}: {sum(len(r['indices']) for r in results)} weights")
    (args.out / "sparse_cases.json").write_text(json.dumps(
        {"fastembed": fastembed.__version__, "tolerance": 1e-5, "cases": entries}, ensure_ascii=False) + "\n")
    listing = SparseTextEmbedding.list_supported_models()
    (args.out / "sparse_models.json").write_text(json.dumps(listing, indent=1, ensure_ascii=False) + "\n")


LATE_CASES = [
    dict(name="colbert-docs", model="colbert-ir/colbertv2.0", dir="tiny:colbert-128", inputs="edge"),
    dict(name="colbert-queries", model="colbert-ir/colbertv2.0", dir="tiny:colbert-128", inputs="edge",
         method="query_embed"),
    dict(name="colbert-corpus", model="colbert-ir/colbertv2.0", dir="tiny:colbert-128", inputs="corpus40",
         batch_size=8),
    dict(name="answerai-docs", model="answerdotai/answerai-colbert-small-v1", dir="tiny:colbert-96-trunc32",
         inputs="edge"),
    dict(name="answerai-queries", model="answerdotai/answerai-colbert-small-v1", dir="tiny:colbert-96-trunc32",
         inputs="edge", method="query_embed"),
    dict(name="jina-colbert-docs", model="jinaai/jina-colbert-v2", dir="tiny:jinacolbert-128", inputs="edge"),
    dict(name="jina-colbert-queries", model="jinaai/jina-colbert-v2", dir="tiny:jinacolbert-128", inputs="edge",
         method="query_embed"),
    dict(name="lateon-docs", model="lightonai/LateOn", dir="tiny:lateon-128", inputs="edge"),
    dict(name="lateon-queries", model="lightonai/LateOn", dir="tiny:lateon-128", inputs="edge",
         method="query_embed"),
    dict(name="mlateon-docs", model="lightonai/mLateOn", dir="tiny:mlateon-128", inputs="edge"),
    dict(name="mlateon-queries", model="lightonai/mLateOn", dir="tiny:mlateon-128", inputs="edge",
         method="query_embed"),
]

# MUVERA on the oracle's own colbert-docs / colbert-queries vectors (inputs 3..8).
MUVERA_CASES = [
    dict(name="muvera-default", options=dict(k_sim=5, dim_proj=16, r_reps=20, random_seed=42)),
    dict(name="muvera-small", options=dict(k_sim=3, dim_proj=8, r_reps=4, random_seed=7)),
    dict(name="muvera-noproj-bigseed", options=dict(k_sim=4, dim_proj=128, r_reps=2, random_seed=123456789012)),
    dict(name="muvera-k0", options=dict(k_sim=0, dim_proj=32, r_reps=3, random_seed=0)),
]


def run_late(roots: dict, inputs: dict, args) -> None:
    from fastembed import LateInteractionTextEmbedding
    from fastembed.postprocess import Muvera

    entries, vectors_by_case = [], {}
    for case in LATE_CASES:
        model_dir = resolve(case["dir"], roots)
        model = LateInteractionTextEmbedding(case["model"], specific_model_path=str(model_dir), threads=2)
        texts = inputs[case["inputs"]]
        method = case.get("method", "embed")
        kwargs = {"batch_size": case["batch_size"]} if "batch_size" in case else {}
        mats = [np.asarray(m, dtype="<f4") for m in getattr(model, method)(texts, **kwargs)]
        vectors_by_case[case["name"]] = mats
        data_file = f"{case['name']}.f32"
        (args.out / data_file).write_bytes(b"".join(m.tobytes() for m in mats))
        inner = model.model
        counts = {
            f"{'doc' if is_doc else 'query'}{'+ext' if ext else ''}": inner.token_count(texts, is_doc=is_doc,
                                                                                 include_extension=ext)
            for is_doc in (True, False) for ext in (False, True)
        }
        desc = next(d for d in LateInteractionTextEmbedding._list_supported_models() if d.model == case["model"])
        entries.append({
            **case,
            "method": method,
            "rows": [int(m.shape[0]) for m in mats],
            "dim": int(mats[0].shape[1]),
            "data_file": data_file,
            "token_counts": counts,
            "model_file": desc.model_file,
            "model_file_sha256": hashlib.sha256((model_dir / desc.model_file).read_bytes()).hexdigest(),
        })
        print(f"{case['name']}: {sum(m.shape[0] for m in mats)} vectors")

    muvera = []
    for case in MUVERA_CASES:
        o = case["options"]
        m = Muvera(dim=128, **o)
        simhash = np.stack([p.simhash_vectors for p in m.simhash_projections]).astype("<f8")
        proj = m.dim_reduction_projections.astype("<i1")
        outputs = {}
        for kind, source, fn in (("document", "colbert-docs", m.process_document),
                                 ("query", "colbert-queries", m.process_query)):
            outs = [fn(v).astype("<f8") for v in vectors_by_case[source][3:9]]
            data_file = f"{case['name']}-{kind}.f64"
            (args.out / data_file).write_bytes(b"".join(x.tobytes() for x in outs))
            outputs[kind] = {"source": source, "first_input": 3, "count": len(outs), "data_file": data_file}
        muvera.append({
            **case,
            "embedding_size": m.embedding_size,
            "simhash_sha256": hashlib.sha256(simhash.tobytes()).hexdigest(),
            "simhash_first": simhash.reshape(-1)[:4].tolist(),
            "projection_sha256": hashlib.sha256(proj.tobytes()).hexdigest(),
            "projection_first": proj.reshape(-1)[:8].tolist(),
            "outputs": outputs,
        })
        print(f"{case['name']}: size {m.embedding_size}")
    (args.out / "late_cases.json").write_text(json.dumps(
        {"fastembed": fastembed.__version__, "tolerance": 1e-5, "cases": entries, "muvera": muvera},
        indent=1, ensure_ascii=False) + "\n")
    listing = LateInteractionTextEmbedding.list_supported_models()
    (args.out / "late_models.json").write_text(json.dumps(listing, indent=1, ensure_ascii=False) + "\n")


TOKEN_CASES = [
    dict(name="tokens-minilm-edge", model="sentence-transformers/all-MiniLM-L6-v2",
         dir="shared:all-MiniLM-L6-v2-fp32", inputs="edge"),
    dict(name="tokens-bge-small-b7", model="BAAI/bge-small-en-v1.5", dir="tiny:cls-384",
         inputs="edge", batch_size=7),
]


def run_tokens(roots: dict, inputs: dict, args) -> None:
    """Token vectors (a dense model's output before pooling) as fastembed's
    TokenEmbeddingsModel gives them; its own list has one model, so the dense model's
    description is added to it for the run."""
    from fastembed.late_interaction import token_embeddings

    entries = []
    for case in TOKEN_CASES:
        desc = next(d for d in TextEmbedding._list_supported_models() if d.model == case["model"])
        if all(d.model != desc.model for d in token_embeddings.supported_token_embeddings_models):
            token_embeddings.supported_token_embeddings_models.append(desc)
        model_dir = resolve(case["dir"], roots)
        model = token_embeddings.TokenEmbeddingsModel(case["model"], specific_model_path=str(model_dir),
                                                      threads=2)
        texts = inputs[case["inputs"]]
        kwargs = {"batch_size": case["batch_size"]} if "batch_size" in case else {}
        mats = [np.asarray(m, dtype="<f4") for m in model.embed(texts, **kwargs)]
        data_file = f"{case['name']}.f32"
        (args.out / data_file).write_bytes(b"".join(m.tobytes() for m in mats))
        entries.append({
            **case,
            "rows": [int(m.shape[0]) for m in mats],
            "dim": int(mats[0].shape[1]),
            "data_file": data_file,
            "model_file": desc.model_file,
            "model_file_sha256": hashlib.sha256((model_dir / desc.model_file).read_bytes()).hexdigest(),
        })
        print(f"{case['name']}: {sum(m.shape[0] for m in mats)} vectors")
    (args.out / "token_cases.json").write_text(json.dumps(
        {"fastembed": fastembed.__version__, "tolerance": 1e-5, "cases": entries},
        indent=1, ensure_ascii=False) + "\n")


RERANK_QUERY = "which vector database stores embeddings for semantic search?"
RERANK_CASES = [
    dict(name="rerank-msmarco-edge", model="Xenova/ms-marco-MiniLM-L-6-v2", dir="tiny:rerank-bert",
         inputs="edge"),
    dict(name="rerank-jina-turbo-corpus", model="jinaai/jina-reranker-v1-turbo-en", dir="tiny:rerank-bert",
         inputs="corpus40", batch_size=7),
    dict(name="rerank-bge-m3-edge", model="BAAI/bge-reranker-v2-m3", dir="tiny:rerank-notype-ext",
         inputs="edge"),
    dict(name="rerank-int8-pairs", model="BAAI/bge-reranker-v2-m3-int8", dir="tiny:rerank-trunc64",
         inputs="pairs", method="rerank_pairs"),
    # TEI's truncation_direction=left on pairs: fastembed with its tokenizer set so (the
    # seeded model truncates pairs at 64 tokens, so most pairs are cut).
    dict(name="rerank-int8-pairs-left", model="BAAI/bge-reranker-v2-m3-int8", dir="tiny:rerank-trunc64",
         inputs="pairs", method="rerank_pairs", truncation="left"),
    dict(name="rerank-custom-pairs", model="embedkit-test/custom-reranker", dir="tiny:rerank-bert",
         inputs="pairs", method="rerank_pairs", custom=dict(model_file="onnx/model.onnx")),
]


def run_rerank(roots: dict, inputs: dict, args) -> None:
    from fastembed.rerank.cross_encoder import TextCrossEncoder

    corpus = inputs["corpus"]
    # pairs of consecutive corpus paragraphs, and edge inputs against each other
    pairs = [(corpus[i], corpus[i + 1]) for i in range(0, 60, 2)]
    edge = inputs["edge"]
    pairs += [(edge[i], edge[-1 - i]) for i in range(len(edge))]
    (args.data / "rerank_pairs.json").write_text(json.dumps(pairs, ensure_ascii=False, indent=0) + "\n")
    entries = []
    kept = {}
    if args.cases:
        old = json.loads((args.out / "rerank_cases.json").read_text())["cases"]
        kept = {e["name"]: e for e in old if e["name"] not in args.cases}
    for case in RERANK_CASES:
        if case["name"] in kept:
            entries.append(kept[case["name"]])
            continue
        model_dir = resolve(case["dir"], roots)
        if case.get("custom"):
            TextCrossEncoder.add_custom_model(case["model"], sources=ModelSource(hf=case["model"]),
                                              model_file=case["custom"]["model_file"])
        model = TextCrossEncoder(case["model"], specific_model_path=str(model_dir), threads=2)
        if "truncation" in case:
            cut_at(model, case["truncation"])
        kwargs = {"batch_size": case["batch_size"]} if "batch_size" in case else {}
        if case.get("method") == "rerank_pairs":
            scores = list(model.rerank_pairs(pairs, **kwargs))
            case_pairs = pairs
        else:
            texts = inputs[case["inputs"]]
            scores = list(model.rerank(RERANK_QUERY, texts, **kwargs))
            case_pairs = [(RERANK_QUERY, t) for t in texts]
        desc = next(d for d in TextCrossEncoder._list_supported_models() if d.model == case["model"])
        entries.append({
            **case,
            "method": case.get("method", "rerank"),
            "query": RERANK_QUERY,
            "scores": [float(x) for x in scores],
            "token_count": model.token_count(case_pairs),
            "model_file": desc.model_file,
            "model_file_sha256": hashlib.sha256((model_dir / desc.model_file).read_bytes()).hexdigest(),
        })
        print(f"{case['name']}: {len(scores)} scores")
    (args.out / "rerank_cases.json").write_text(json.dumps(
        {"fastembed": fastembed.__version__, "tolerance": 1e-5, "cases": entries}, indent=1,
        ensure_ascii=False) + "\n")
    listing = [m for m in TextCrossEncoder.list_supported_models() if not m["model"].startswith("embedkit-test/")]
    (args.out / "rerank_models.json").write_text(json.dumps(listing, indent=1, ensure_ascii=False) + "\n")


IMAGE_CASES = [
    dict(name="image-clip", model="Qdrant/clip-ViT-B-32-vision", dir="tiny:vision-clip-512"),
    dict(name="image-resnet", model="Qdrant/resnet50-onnx", dir="tiny:vision-resnet-2048"),
    dict(name="image-unicom-b16", model="Qdrant/Unicom-ViT-B-16", dir="tiny:vision-unicom-lanczos-768"),
    dict(name="image-unicom-b32-padcrop", model="Qdrant/Unicom-ViT-B-32", dir="tiny:vision-unicom-padcrop-512"),
    dict(name="image-jina-clip", model="jinaai/jina-clip-v1", dir="tiny:vision-jinaclip-768"),
    dict(name="image-nomic", model="nomic-ai/nomic-embed-vision-v1.5", dir="tiny:vision-nomic-768"),
    dict(name="image-nomic-q", model="nomic-ai/nomic-embed-vision-v1.5-Q", dir="tiny:vision-nomic-768"),
    dict(name="image-siglip2", model="google/siglip2-base-patch16-224", dir="tiny:vision-siglip-768"),
]


def run_image(roots: dict, args) -> None:
    from fastembed import ImageEmbedding

    images = sorted(p.name for p in (args.data / "images").iterdir())
    entries = []
    for case in IMAGE_CASES:
        model_dir = resolve(case["dir"], roots)
        model = ImageEmbedding(case["model"], specific_model_path=str(model_dir), threads=2)
        vectors = np.stack(list(model.embed([str(args.data / "images" / n) for n in images], batch_size=4)))
        vectors = vectors.astype("<f4")
        data_file = f"{case['name']}.f32"
        (args.out / data_file).write_bytes(vectors.tobytes())
        desc = next(d for d in ImageEmbedding._list_supported_models() if d.model == case["model"])
        entries.append({
            **case,
            "images": images,
            "shape": list(vectors.shape),
            "data_file": data_file,
            "model_file": desc.model_file,
            "model_file_sha256": hashlib.sha256((model_dir / desc.model_file).read_bytes()).hexdigest(),
        })
        print(f"{case['name']}: {vectors.shape}")
    (args.out / "image_cases.json").write_text(json.dumps(
        {"fastembed": fastembed.__version__, "tolerance": 1e-4, "cases": entries}, indent=1) + "\n")
    listing = ImageEmbedding.list_supported_models()
    (args.out / "image_models.json").write_text(json.dumps(listing, indent=1, ensure_ascii=False) + "\n")


MULTIMODAL_CASES = [
    dict(name="colpali-text-b256", model="Qdrant/colpali-v1.3-fp16", dir="tiny:colpali", method="embed_text",
         batch_size=256),
    dict(name="colpali-text-b3", model="Qdrant/colpali-v1.3-fp16", dir="tiny:colpali", method="embed_text",
         batch_size=3),
    dict(name="colpali-image", model="Qdrant/colpali-v1.3-fp16", dir="tiny:colpali", method="embed_image",
         batch_size=4),
    dict(name="colmodernvbert-text-b256", model="Qdrant/colmodernvbert", dir="tiny:colmodernvbert",
         method="embed_text", batch_size=256),
    dict(name="colmodernvbert-text-b3", model="Qdrant/colmodernvbert", dir="tiny:colmodernvbert",
         method="embed_text", batch_size=3),
    dict(name="colmodernvbert-image-b2", model="Qdrant/colmodernvbert", dir="tiny:colmodernvbert",
         method="embed_image", batch_size=2),
    dict(name="colmodernvbert-image-b1", model="Qdrant/colmodernvbert", dir="tiny:colmodernvbert",
         method="embed_image", batch_size=1),
]


def run_multimodal(roots: dict, inputs: dict, args) -> None:
    from fastembed import LateInteractionMultimodalEmbedding

    all_images = sorted(p.name for p in (args.data / "images").iterdir())
    # Short texts (the two long edge inputs would pad every query to 512 rows) and, for
    # ColPali (1030 rows per image), two images: keeps the expected files small.
    texts = [t for t in inputs["edge"] if len(t.split()) < 100]
    entries = []
    for case in MULTIMODAL_CASES:
        images = ["gray16.png", "photo.jpg"] if "colpali" in case["name"] else all_images
        model_dir = resolve(case["dir"], roots)
        model = LateInteractionMultimodalEmbedding(case["model"], specific_model_path=str(model_dir), threads=2)
        if case["method"] == "embed_text":
            items = texts
            mats = list(model.embed_text(items, batch_size=case["batch_size"]))
            counts = {"plain": model.token_count(items), "extended": model.token_count(items, include_extension=True)}
        else:
            items = images
            mats = list(model.embed_image([str(args.data / "images" / n) for n in images],
                                          batch_size=case["batch_size"]))
            counts = {}
        mats = [np.asarray(m, dtype="<f4") for m in mats]
        data_file = f"{case['name']}.f32"
        (args.out / data_file).write_bytes(b"".join(m.tobytes() for m in mats))
        desc = next(d for d in LateInteractionMultimodalEmbedding._list_supported_models()
                    if d.model == case["model"])
        entries.append({
            **case,
            "inputs": "edge_short" if case["method"] == "embed_text" else "images",
            "images": images if case["method"] == "embed_image" else None,
            "rows": [int(m.shape[0]) for m in mats],
            "dim": int(mats[0].shape[1]),
            "data_file": data_file,
            "token_counts": counts,
            "model_file": desc.model_file,
            "model_file_sha256": hashlib.sha256((model_dir / desc.model_file).read_bytes()).hexdigest(),
        })
        print(f"{case['name']}: {sum(m.shape[0] for m in mats)} vectors")
    (args.out / "multimodal_cases.json").write_text(json.dumps(
        {"fastembed": fastembed.__version__, "tolerance": 1e-5, "cases": entries}, indent=1) + "\n")
    listing = LateInteractionMultimodalEmbedding.list_supported_models()
    (args.out / "multimodal_models.json").write_text(json.dumps(listing, indent=1, ensure_ascii=False) + "\n")


def resolve(symbolic: str, roots: dict) -> Path:
    kind, name = symbolic.split(":", 1)
    return roots[kind] / name


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", required=True, type=Path)
    ap.add_argument("--setup", required=True, type=Path)
    ap.add_argument("--tiny", required=True, type=Path)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--cases", nargs="+", metavar="NAME",
                    help="regenerate only these dense or rerank cases, keeping the others' entries")
    ap.add_argument("--only", choices=["dense", "sparse", "late", "tokens", "rerank", "image", "multimodal"], help="regenerate one family's files")
    args = ap.parse_args()
    roots = {"shared": args.shared, "setup": args.setup, "tiny": args.tiny}
    inputs = {
        "edge": json.loads((args.data / "edge_inputs.json").read_text()),
        "corpus": (args.data / "corpus.txt").read_text().split("\n")[:-1],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    inputs["corpus40"] = inputs["corpus"][:40]
    if args.only == "sparse":
        run_sparse(roots, inputs, args)
        return
    if args.only == "late":
        run_late(roots, inputs, args)
        return
    if args.only == "tokens":
        run_tokens(roots, inputs, args)
        return
    if args.only == "rerank":
        run_rerank(roots, inputs, args)
        return
    if args.only == "image":
        run_image(roots, args)
        return
    if args.only == "multimodal":
        run_multimodal(roots, inputs, args)
        return
    entries = []
    kept = {}
    if args.cases:
        unknown = set(args.cases) - {c["name"] for c in CASES + RERANK_CASES}
        if unknown:
            ap.error(f"no dense or rerank case named {sorted(unknown)}")
        if set(args.cases) & {c["name"] for c in RERANK_CASES}:
            run_rerank(roots, inputs, args)
        if not set(args.cases) & {c["name"] for c in CASES}:
            return
        old = json.loads((args.out / "cases.json").read_text())["cases"]
        kept = {e["name"]: e for e in old if e["name"] not in args.cases}
    for case in CASES:
        if case["name"] in kept:
            entries.append(kept[case["name"]])
            continue
        model_dir = resolve(case["dir"], roots)
        custom = case.get("custom")
        if custom:
            TextEmbedding.add_custom_model(
                model=case["model"], pooling=PoolingType(custom["pooling"]),
                normalization=custom["normalization"], sources=ModelSource(hf=case["model"]),
                dim=custom["dim"], model_file=custom["model_file"],
                additional_files=custom.get("additional_files"), output_name=custom.get("output_name"),
            )
        kwargs = {"task_id": case["task_id"]} if "task_id" in case else {}
        model = TextEmbedding(case["model"], specific_model_path=str(model_dir), threads=2, **kwargs)
        if "truncation" in case:
            cut_at(model, case["truncation"])
        texts = inputs[case["inputs"]]
        method = case.get("method", "embed")
        batch_size = case.get("batch_size", 256)
        vectors = np.stack(list(getattr(model, method)(texts, batch_size=batch_size))).astype("<f4")
        data_file = f"{case['name']}.f32"
        (args.out / data_file).write_bytes(vectors.tobytes())
        desc = next(d for d in TextEmbedding._list_supported_models() if d.model == case["model"])
        model_file = model_dir / desc.model_file
        entries.append({
            **{k: v for k, v in case.items()
               if k in ("name", "model", "dir", "inputs", "custom", "task_id", "truncation")},
            "method": method,
            "oracle_batch_size": batch_size,
            "shape": list(vectors.shape),
            "data_file": data_file,
            "token_count": model.token_count(texts),
            "model_file": desc.model_file,
            "model_file_sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
        })
        print(f"{case['name']}: {vectors.shape}")
    listing = TextEmbedding.list_supported_models()
    builtin = [m for m in listing if not m["model"].startswith("embedkit-test/")]
    (args.out / "dense_models.json").write_text(json.dumps(builtin, indent=1, ensure_ascii=False) + "\n")
    if args.only != "dense" and not args.cases:
        run_sparse(roots, inputs, args)
        run_late(roots, inputs, args)
        run_tokens(roots, inputs, args)
        run_rerank(roots, inputs, args)
        run_image(roots, args)
        run_multimodal(roots, inputs, args)
    (args.out / "cases.json").write_text(json.dumps(
        {"fastembed": fastembed.__version__, "tolerance": 1e-5, "cases": entries},
        indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

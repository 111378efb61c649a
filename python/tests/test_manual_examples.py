"""The Python examples of the fastembed manual (../shared/seed/fastembed-manual.txt), run
with two changes only: `fastembed` → `embedkit` in the import lines, and
`specific_model_path=...` where the example would download from the Hugging Face hub
(unreachable here) — the folders hold seeded models of the same architecture. Each
example also runs with its imports back on `fastembed` 0.9.1, and what it computed (the
names in OUTPUTS) must be the same."""

import textwrap

import numpy as np
import pytest

from conftest import DATA, model_dir

# What each example computes, compared with fastembed's.
OUTPUTS = {
    "dense": ["embeddings"],
    "sparse": ["embeddings"],
    "image": ["embeddings"],
    "late interaction and muvera": ["embeddings", "fde"],
    "basic text embedding": ["embeddings"],
    "lazy loading, threads, device": [],
    "version": [],
    "complete workflow": ["dense_embeddings", "sparse_embeddings"],
}

PATHS = {
    "BGE": ("tiny", "cls-384"),
    "SPLADE": ("shared", "splade-tiny"),
    "RESNET": ("tiny", "vision-resnet-2048"),
    "COLBERT": ("tiny", "colbert-128"),
    "JINA_RERANK": ("tiny", "rerank-bert"),
}

EXAMPLES = {
    "dense": """
        from embedkit import TextEmbedding
        documents = [
        "passage: FastEmbed is a fast embedding library",
        "query: What is FastEmbed?",
        "passage: Qdrant is a vector database",
        ]
        model = TextEmbedding(model_name="BAAI/bge-small-en-v1.5", specific_model_path=BGE)
        embeddings = list(model.embed(documents))
        print(f"Generated {len(embeddings)} embeddings")
        print(f"Embedding dimension: {embeddings[0].shape}")
        assert len(embeddings) == 3 and embeddings[0].shape == (384,)
    """,
    "sparse": """
        from embedkit import SparseTextEmbedding
        documents = ["passage: FastEmbed is a fast embedding library", "query: What is FastEmbed?"]
        model = SparseTextEmbedding(model_name="prithivida/Splade_PP_en_v1", specific_model_path=SPLADE)
        embeddings = list(model.embed(documents))
        assert len(embeddings[0].indices) == len(embeddings[0].values) > 0
    """,
    "image": """
        from embedkit import ImageEmbedding
        from PIL import Image
        model = ImageEmbedding(model_name="Qdrant/resnet50-onnx", specific_model_path=RESNET)
        images = [Image.open(PHOTO)]
        embeddings = list(model.embed(images))
        assert embeddings[0].shape == (2048,)
    """,
    "late interaction and muvera": """
        from embedkit import LateInteractionTextEmbedding
        from embedkit.postprocess import Muvera
        import numpy as np
        model = LateInteractionTextEmbedding(model_name="colbert-ir/colbertv2.0", specific_model_path=COLBERT)
        muvera = Muvera.from_multivector_model(
        model=model,
        k_sim=6,
        dim_proj=32
        )
        embeddings = np.array(list(model.embed(["sample text"])))
        fde = muvera.process_document(embeddings[0])
        assert fde.shape == (20 * 2**6 * 32,)
    """,
    "basic text embedding": """
        from embedkit import TextEmbedding
        # Use the default model (BAAI/bge-small-en-v1.5)
        model = TextEmbedding(model_name="BAAI/bge-small-en-v1.5", specific_model_path=BGE)
        documents = [
        "passage: A man is eating food.",
        "passage: A man is eating a piece of broccoli.",
        "passage: A man is eating pasta.",
        "passage: A woman is cutting vegetables.",
        ]
        embeddings = list(model.embed(documents))
        assert len(embeddings) == 4
    """,
    "lazy loading, threads, device": """
        from embedkit import TextEmbedding
        model = TextEmbedding(
        model_name="BAAI/bge-small-en-v1.5",
        lazy_load=True, # Model loads on first inference call
        specific_model_path=BGE,
        )
        model = TextEmbedding(
        model_name="BAAI/bge-small-en-v1.5",
        threads=4, # Limit to 4 threads
        specific_model_path=BGE,
        )
        from embedkit.common import Device
        model = TextEmbedding(
        model_name="BAAI/bge-small-en-v1.5",
        cuda=Device.AUTO, # or Device.AUTO for automatic detection
        specific_model_path=BGE,
        )
        assert len(list(model.embed(["hello"]))) == 1
    """,
    "version": """
        import embedkit
        print(embedkit.__version__)
    """,
    "complete workflow": """
        from embedkit import TextEmbedding, SparseTextEmbedding, TextCrossEncoder
        # 1. Load models
        text_model = TextEmbedding(model_name="BAAI/bge-small-en-v1.5", specific_model_path=BGE)
        sparse_model = SparseTextEmbedding(model_name="prithivida/Splade_PP_en_v1", specific_model_path=SPLADE)
        reranker = TextCrossEncoder(model_name="jinaai/jina-reranker-v1-turbo-en", specific_model_path=JINA_RERANK)
        # 2. Generate dense embeddings
        documents = ["query: fastembed is fast", "passage: FastEmbed provides efficient embeddings"]
        dense_embeddings = list(text_model.embed(documents))
        # 3. Generate sparse embeddings
        sparse_embeddings = list(sparse_model.embed(documents))
        # 4. Rerank results
        query = "query: What is FastEmbed?"
        results = reranker.rerank(query=query, documents=documents, top_k=2)
        assert len(list(results)) == 2
    """,
}


def run(name: str, library: str) -> dict:
    namespace = {k: model_dir(*v) for k, v in PATHS.items()}
    namespace["PHOTO"] = str(DATA / "images" / "photo.jpg")
    code = textwrap.dedent(EXAMPLES[name])
    if library == "fastembed":
        code = code.replace("from embedkit", "from fastembed").replace("import embedkit", "import fastembed as embedkit")
        # fastembed 0.9.1 exports TextCrossEncoder from its module only (the manual's
        # top-level import fails there).
        code = code.replace(", TextCrossEncoder\n", "\nfrom fastembed.rerank.cross_encoder import TextCrossEncoder\n")
        # ... and Device from fastembed.common.types only.
        code = code.replace("from fastembed.common import Device", "from fastembed.common.types import Device")
    exec(compile(code, f"<manual example: {name} on {library}>", "exec"), namespace)
    return namespace


def same(ours, theirs, what: str) -> None:
    """Equal to fastembed's within 1e-5: arrays, sparse embeddings, and lists of them."""
    if hasattr(theirs, "indices"):
        assert np.array_equal(np.asarray(ours.indices), np.asarray(theirs.indices)), what
        assert np.abs(np.asarray(ours.values) - np.asarray(theirs.values)).max(initial=0.0) <= 1e-5, what
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), what
        for i, (a, b) in enumerate(zip(ours, theirs)):
            same(a, b, f"{what}[{i}]")
    else:
        a, b = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
        assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
        assert np.abs(a - b).max(initial=0.0) <= 1e-5, what


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_manual_example(name):
    ours = run(name, "embedkit")
    theirs = run(name, "fastembed")
    for var in OUTPUTS[name]:
        same(ours[var], theirs[var], f"{name}: {var}")

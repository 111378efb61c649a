"""The libraries that import fastembed themselves, run on the real fastembed 0.9.1 and on
embedkit installed as fastembed (`embedkit.install_as_fastembed()`), offline over one
cache in fastembed's layout: they must give the same ids and scores, and vectors within
1e-5."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import COMMIT, REPO, run

DENSE = "sentence-transformers/all-MiniLM-L6-v2"
SPARSE = "prithivida/Splade_PP_en_v1"


def close(a, b, tol=1e-5):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.abs(a - b).max(initial=0.0) <= tol, np.abs(a - b).max()


def same_hits(ours, theirs):
    """Query results [[id, score], ...]: the same ids in the same order, scores within
    1e-5 (a tie may swap, so ids are compared as ranked by score)."""
    assert len(ours) == len(theirs)
    for (id_a, s_a), (id_b, s_b) in zip(ours, theirs):
        assert abs(s_a - s_b) <= 1e-5, (ours, theirs)
        if abs(s_a - s_b) > 1e-6:
            assert id_a == id_b, (ours, theirs)
    assert sorted(i for i, _ in ours) == sorted(i for i, _ in theirs)


# The manual's "Complete Qdrant Integration Example", with ":memory:" instead of a server.
MANUAL_EXAMPLE = """
from qdrant_client import QdrantClient, models
client = QdrantClient(":memory:")
model_name = "sentence-transformers/all-MiniLM-L6-v2"
payload = [
    {"document": "Qdrant has Langchain integrations", "source": "Langchain-docs"},
    {"document": "Qdrant also has Llama Index integrations", "source": "LlamaIndex-docs"},
]
docs = [models.Document(text=data["document"], model=model_name) for data in payload]
ids = [42, 2]
client.create_collection(
    "demo_collection",
    vectors_config=models.VectorParams(
        size=client.get_embedding_size(model_name), distance=models.Distance.COSINE
    )
)
client.upload_collection(collection_name="demo_collection", vectors=docs, ids=ids, payload=payload)
search_result = client.query_points(collection_name="demo_collection", query=docs[0], limit=5)
print(json.dumps([[p.id, p.score] for p in search_result.points]))
"""


def test_the_manuals_qdrant_example(cache):
    ours = run(MANUAL_EXAMPLE, "embedkit", cache)
    theirs = run(MANUAL_EXAMPLE, "fastembed", cache)
    assert [i for i, _ in ours] == [42, 2]
    same_hits(ours, theirs)


QDRANT_HYBRID = """
from qdrant_client import QdrantClient, models
DENSE, SPARSE = "%s", "%s"
texts = open("tests/data/corpus.txt", encoding="utf-8").read().splitlines()[:60]
queries = ["how do I open a file", "what is a generator", "network sockets and timeouts"]
client = QdrantClient(":memory:")
client.create_collection(
    "docs",
    vectors_config={"dense": models.VectorParams(size=client.get_embedding_size(DENSE),
                                                 distance=models.Distance.COSINE)},
    sparse_vectors_config={"sparse": models.SparseVectorParams()},
)
client.upload_points("docs", [
    models.PointStruct(id=i, payload={"text": t}, vector={
        "dense": models.Document(text=t, model=DENSE),
        "sparse": models.Document(text=t, model=SPARSE),
    })
    for i, t in enumerate(texts)
])
out = {}
for q in queries:
    dense = client.query_points("docs", query=models.Document(text=q, model=DENSE), using="dense", limit=8)
    sparse = client.query_points("docs", query=models.Document(text=q, model=SPARSE), using="sparse", limit=8)
    out[q] = {"dense": [[p.id, p.score] for p in dense.points],
              "sparse": [[p.id, p.score] for p in sparse.points]}
print(json.dumps(out))
""" % (DENSE, SPARSE)


def test_qdrant_local_mode_with_dense_and_sparse_documents(cache):
    ours = run(QDRANT_HYBRID, "embedkit", cache)
    theirs = run(QDRANT_HYBRID, "fastembed", cache)
    assert ours.keys() == theirs.keys()
    for q in ours:
        assert len(ours[q]["dense"]) == 8 and len(ours[q]["sparse"]) > 0
        same_hits(ours[q]["dense"], theirs[q]["dense"])
        same_hits(ours[q]["sparse"], theirs[q]["sparse"])


LANGCHAIN = """
from langchain_community.embeddings.fastembed import FastEmbedEmbeddings
from langchain_qdrant import FastEmbedSparse
texts = ["Qdrant is a vector database", "LangChain composes language model calls", ""]
dense = FastEmbedEmbeddings(model_name="%s")
sparse = FastEmbedSparse(model_name="%s")
docs = sparse.embed_documents(texts)
query = sparse.embed_query("vector database")
print(json.dumps({
    "documents": dense.embed_documents(texts),
    "query": dense.embed_query("what is a vector database"),
    "sparse_documents": [[d.indices, d.values] for d in docs],
    "sparse_query": [query.indices, query.values],
}))
""" % (DENSE, SPARSE)


def test_langchain_dense_and_sparse(cache):
    ours = run(LANGCHAIN, "embedkit", cache)
    theirs = run(LANGCHAIN, "fastembed", cache)
    close(ours["documents"], theirs["documents"])
    close(ours["query"], theirs["query"])
    for (i_a, v_a), (i_b, v_b) in zip(ours["sparse_documents"] + [ours["sparse_query"]],
                                      theirs["sparse_documents"] + [theirs["sparse_query"]]):
        a, b = dict(zip(i_a, v_a)), dict(zip(i_b, v_b))
        # SPLADE's near-zero weights may fall on either side of its threshold.
        for k in set(a) | set(b):
            assert abs(a.get(k, 0.0) - b.get(k, 0.0)) <= 1e-5


LLAMA_INDEX = """
from llama_index.embeddings.fastembed import FastEmbedEmbedding
model = FastEmbedEmbedding(model_name="%s")
print(json.dumps({
    "text": model.get_text_embedding("LlamaIndex indexes documents"),
    "texts": model.get_text_embedding_batch(["one document", "another one"]),
    "query": model.get_query_embedding("what indexes documents?"),
}))
""" % DENSE


def test_llama_index_fastembed_embedding(cache):
    ours = run(LLAMA_INDEX, "embedkit", cache)
    theirs = run(LLAMA_INDEX, "fastembed", cache)
    for key in ours:
        close(ours[key], theirs[key])


ALIAS = """
import importlib.metadata
import fastembed.common, fastembed.common.types, fastembed.common.model_description
from fastembed.common import OnnxProvider, ImageInput
from fastembed.rerank.cross_encoder import TextCrossEncoder
from fastembed.sparse.sparse_text_embedding import SparseTextEmbedding
from fastembed.text.text_embedding import TextEmbedding
from fastembed.late_interaction import LateInteractionTextEmbedding
from fastembed.image.image_embedding import ImageEmbedding
from fastembed.postprocess import Muvera
import embedkit
embedkit.install_as_fastembed()  # a second call does nothing
try:
    import fastembed.parallel_processor
    internal = "imported"
except ImportError as e:
    internal = str(e)
real_metadata = importlib.metadata.version("fastembed")
# Where the real fastembed is not installed, the alias answers for it.
import embedkit._fastembed as alias
alias._real_distribution_installed = lambda: False
print(json.dumps({
    "alone": importlib.metadata.version("fastembed"),
    "version": fastembed.__version__,
    "metadata": real_metadata,
    "same_class": fastembed.TextEmbedding is embedkit.TextEmbedding,
    "internal": internal,
}))
"""


def test_the_alias_covers_what_integrations_import(cache):
    got = run(ALIAS, "embedkit", cache)
    assert got["version"].startswith("0.9.1+embedkit."), got
    # The real fastembed is installed in this venv: its metadata stays its own.
    assert got["metadata"] == "0.9.1", got
    assert got["alone"] == got["version"], got
    assert got["same_class"]
    assert "embedkit does not provide" in got["internal"], got


def test_installing_after_the_real_fastembed_was_imported_is_an_error(cache):
    scenario = """
import embedkit
try:
    embedkit.install_as_fastembed()
    print(json.dumps("installed"))
except RuntimeError as e:
    print(json.dumps(str(e)))
"""
    # The prelude imported the real fastembed first.
    got = run(scenario, "fastembed", cache)
    assert "already imported" in got and "before importing" in got, got


def readme_block(marker: str) -> str:
    """The Python code block that follows `marker` in the README."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    after = text.split(marker, 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readmes_hybrid_bge_m3_example(tmp_path):
    """The README's hybrid collection (named dense, sparse and ColBERT vectors in
    qdrant-client's local mode), run as written, offline, over a cache holding the seeded
    BGE-M3 model as `BAAI/bge-m3`: three hits, ranked by MaxSim of the query's token
    vectors over each document's, as embedkit computes them here."""
    import embedkit

    tiny = REPO / "target" / "test-models" / "bge-m3"
    if not tiny.is_dir():
        pytest.fail(f"{tiny} is missing: run `make test-models`", pytrace=False)
    cache = tmp_path / "cache"
    snapshot = cache / "models--BAAI--bge-m3" / "snapshots" / COMMIT
    for f in sorted(p for p in tiny.rglob("*") if p.is_file()):
        data = f.read_bytes()
        blob = cache / "models--BAAI--bge-m3" / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / f.relative_to(tiny)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (cache / "models--BAAI--bge-m3" / "refs").mkdir()
    (cache / "models--BAAI--bge-m3" / "refs" / "main").write_text(COMMIT)
    code = readme_block("<!-- hybrid-example -->")
    env = dict(os.environ, HF_HUB_OFFLINE="1", FASTEMBED_CACHE_PATH=str(cache), TOKENIZERS_PARALLELISM="false")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600,
                         cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-4000:]
    lines = [l.split(" ", 2) for l in out.stdout.strip().splitlines()]
    assert len(lines) == 3, out.stdout
    ids = [int(i) for i, _, _ in lines]
    scores = [float(s) for _, s, _ in lines]
    assert sorted(ids) == [0, 1, 2] and scores == sorted(scores, reverse=True), out.stdout

    docs = ["Qdrant stores dense, sparse and multi-vectors side by side.",
            "BGE-M3 gives all three embeddings from one forward pass.",
            "Paris is the capital of France."]
    model = embedkit.BgeM3Embedding("BAAI/bge-m3", specific_model_path=str(tiny))
    d = model.encode(docs, return_dense=False, return_colbert_vecs=True)["colbert_vecs"]
    q = model.encode("Which model gives three kinds of vectors?", return_dense=False,
                     return_colbert_vecs=True)["colbert_vecs"]
    maxsim = [float((q @ m.T).max(axis=1).sum()) for m in d]
    assert ids == sorted(range(3), key=lambda i: -maxsim[i]), (ids, maxsim)
    for i, s in zip(ids, scores):
        assert abs(s - maxsim[i]) <= 1e-3, (i, s, maxsim[i])
    assert [t for _, _, t in lines] == [docs[i] for i in ids]

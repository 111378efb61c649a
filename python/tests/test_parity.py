"""The package's outputs against fastembed 0.9.1 run live on the same model files, for
every family. Tolerances: 1e-5 absolute on unit vectors and scores (float32 error of
different summation orders); sparse index sets must be identical except SPLADE, whose
near-zero weights may fall on either side of its threshold."""

import numpy as np
import pytest
from PIL import Image

import embedkit
from conftest import model_dir

TOL = 1e-5


def close(ours, theirs, tol=TOL):
    ours, theirs = list(ours), list(theirs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape
        assert np.abs(a.astype(np.float64) - b).max(initial=0.0) <= tol


DENSE = [
    ("sentence-transformers/all-MiniLM-L6-v2", "setup", "all-MiniLM-L6-v2-int8"),
    ("sentence-transformers/all-MiniLM-L6-v2", "shared", "all-MiniLM-L6-v2-fp32"),
    ("BAAI/bge-small-en-v1.5", "tiny", "cls-384"),
    ("nomic-ai/nomic-embed-text-v1.5", "tiny", "mean-768"),
]


@pytest.mark.parametrize("name,kind,folder", DENSE)
def test_dense(name, kind, folder, edge_inputs, corpus):
    import fastembed

    path = model_dir(kind, folder)
    ours = embedkit.TextEmbedding(name, specific_model_path=path, threads=2)
    theirs = fastembed.TextEmbedding(name, specific_model_path=path, threads=2)
    texts = edge_inputs + corpus
    close(ours.embed(texts, batch_size=8), theirs.embed(texts, batch_size=8))
    close(ours.query_embed(edge_inputs), theirs.query_embed(edge_inputs))
    close(ours.passage_embed(corpus[:10]), theirs.passage_embed(corpus[:10]))
    first = next(iter(ours.embed("one text")))
    assert first.shape == (ours.embedding_size,) and first.dtype == np.float32
    assert ours.token_count(corpus[:5]) == theirs.token_count(corpus[:5])


def sparse_equal(ours, theirs, exact_indices=True):
    ours, theirs = list(ours), list(theirs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert isinstance(a, embedkit.SparseEmbedding)
        assert a.indices.dtype == np.int64 and a.values.dtype == np.float32
        da, db = a.as_dict(), b.as_dict()
        if exact_indices:
            assert set(da) == set(db)
        for k in set(da) | set(db):
            assert abs(da.get(k, 0.0) - db.get(k, 0.0)) <= TOL


SPARSE = [
    ("prithivida/Splade_PP_en_v1", "shared", "splade-tiny", {}, False),
    ("Qdrant/bm25", "tiny", "bm25", {}, True),
    ("Qdrant/bm25", "tiny", "bm25", {"language": "german", "k": 0.9, "b": 0.4, "avg_len": 60.0}, True),
    ("Qdrant/bm42-all-minilm-l6-v2-attentions", "shared", "all-MiniLM-L6-v2-fp32", {}, True),
    ("Qdrant/minicoil-v1", "tiny", "minicoil", {}, True),
    # Each kind's own keyword arguments, as fastembed's classes take them.
    ("Qdrant/bm25", "tiny", "bm25", {"disable_stemmer": True, "token_max_length": 6}, True),
    ("Qdrant/bm42-all-minilm-l6-v2-attentions", "shared", "all-MiniLM-L6-v2-fp32", {"alpha": 0.8}, True),
    ("Qdrant/minicoil-v1", "tiny", "minicoil", {"k": 0.9, "b": 0.4, "avg_len": 60.0}, True),
]


@pytest.mark.parametrize("name,kind,folder,options,exact", SPARSE)
def test_sparse(name, kind, folder, options, exact, edge_inputs, corpus):
    import fastembed

    path = model_dir(kind, folder)
    ours = embedkit.SparseTextEmbedding(name, specific_model_path=path, **options)
    theirs = fastembed.SparseTextEmbedding(name, specific_model_path=path, **options)
    texts = edge_inputs + corpus[:60]
    sparse_equal(ours.embed(texts, batch_size=16), theirs.embed(texts, batch_size=16), exact)
    sparse_equal(ours.query_embed(edge_inputs), theirs.query_embed(edge_inputs), exact)


@pytest.mark.parametrize("name,folder", [("colbert-ir/colbertv2.0", "colbert-128"),
                                         ("jinaai/jina-colbert-v2", "jinacolbert-128")])
def test_late_interaction_and_muvera(name, folder, edge_inputs, corpus):
    import fastembed
    from fastembed.postprocess import Muvera as TheirMuvera

    from embedkit.postprocess import Muvera

    path = model_dir("tiny", folder)
    ours = embedkit.LateInteractionTextEmbedding(name, specific_model_path=path)
    theirs = fastembed.LateInteractionTextEmbedding(name, specific_model_path=path)
    texts = edge_inputs + corpus[:30]
    docs = list(ours.embed(texts, batch_size=8))
    close(docs, theirs.embed(texts, batch_size=8))
    queries = list(ours.query_embed(edge_inputs))
    close(queries, theirs.query_embed(edge_inputs))
    m = Muvera.from_multivector_model(ours, k_sim=4, dim_proj=16, r_reps=8, random_seed=7)
    t = TheirMuvera.from_multivector_model(theirs, k_sim=4, dim_proj=16, r_reps=8, random_seed=7)
    assert m.embedding_size == t.embedding_size
    for d in docs[3:8]:
        close([m.process_document(d)], [t.process_document(d)], 1e-9)
    for q in queries[3:8]:
        close([m.process_query(q)], [t.process_query(q)], 1e-9)

    # MUVERA as a per-call option of the capability handle: fastembed's Muvera on
    # fastembed's own vectors.
    handle = embedkit.EmbeddingModel(name, specific_model_path=path)
    params = dict(k_sim=4, dim_proj=16, r_reps=8, random_seed=7)
    for purpose, embed, process in (("document", theirs.embed, t.process_document),
                                    ("query", theirs.query_embed, t.process_query)):
        got = list(handle.embed_muvera(texts[3:8], muvera=params, purpose=purpose, batch_size=8))
        want = [process(v) for v in embed(texts[3:8], batch_size=8)]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == (t.embedding_size,)
            assert np.abs(g - w).max() <= 1e-5 * max(1.0, np.abs(w).max()), purpose


def test_image(images):
    import fastembed

    path = model_dir("tiny", "vision-clip-512")
    ours = embedkit.ImageEmbedding("Qdrant/clip-ViT-B-32-vision", specific_model_path=path)
    theirs = fastembed.ImageEmbedding("Qdrant/clip-ViT-B-32-vision", specific_model_path=path)
    close(ours.embed(images, batch_size=4), theirs.embed(images, batch_size=4))
    # In-memory Pillow images and file bytes give what the file gives.
    photo = [p for p in images if p.endswith("photo.png")][0]
    pil = Image.open(photo)
    with open(photo, "rb") as f:
        raw = f.read()
    expected = list(theirs.embed([photo]))
    close(ours.embed(pil), expected)
    close(ours.embed([raw]), expected)


def test_multimodal(images, corpus):
    import fastembed

    path = model_dir("tiny", "colpali")
    name = "Qdrant/colpali-v1.3-fp16"
    ours = embedkit.LateInteractionMultimodalEmbedding(name, specific_model_path=path)
    theirs = fastembed.LateInteractionMultimodalEmbedding(name, specific_model_path=path)
    close(ours.embed_text(corpus[:7], batch_size=3), theirs.embed_text(corpus[:7], batch_size=3))
    some = [p for p in images if p.endswith(("photo.jpg", "gray16.png"))]
    close(ours.embed_image(some, batch_size=1), theirs.embed_image(some, batch_size=1))


def test_rerank(corpus):
    from fastembed.rerank.cross_encoder import TextCrossEncoder as Theirs

    from embedkit.rerank.cross_encoder import TextCrossEncoder

    path = model_dir("tiny", "rerank-bert")
    name = "Xenova/ms-marco-MiniLM-L-6-v2"
    ours = TextCrossEncoder(name, specific_model_path=path)
    theirs = Theirs(name, specific_model_path=path)
    assert embedkit.TextCrossEncoder is TextCrossEncoder
    close([list(ours.rerank("what is a vector", corpus[:40], batch_size=8))],
          [list(theirs.rerank("what is a vector", corpus[:40], batch_size=8))])
    pairs = list(zip(corpus[:10], corpus[10:20]))
    close([list(ours.rerank_pairs(pairs))], [list(theirs.rerank_pairs(pairs))])

    # A ranking through the capability handle: fastembed's scores, best first.
    handle = embedkit.EmbeddingModel(name, specific_model_path=path)
    scores = list(theirs.rerank("what is a vector", corpus[:40]))
    best = sorted(range(40), key=lambda i: -scores[i])
    top = handle.rank("what is a vector", corpus[:40], top_n=5, batch_size=8)
    assert [r["index"] for r in top] == best[:5]
    close([[r["score"] for r in top]], [[scores[i] for i in best[:5]]])
    assert len(handle.rank("what is a vector", corpus[:40])) == 40
    with pytest.raises(TypeError):
        handle.rank("q", ["d"], top=3)


@pytest.mark.parametrize("ours,theirs", [
    ("TextEmbedding", "TextEmbedding"), ("SparseTextEmbedding", "SparseTextEmbedding"),
    ("LateInteractionTextEmbedding", "LateInteractionTextEmbedding"), ("ImageEmbedding", "ImageEmbedding"),
    ("TextCrossEncoder", "TextCrossEncoder"),
    ("LateInteractionMultimodalEmbedding", "LateInteractionMultimodalEmbedding"),
])
def test_supported_models_match(ours, theirs):
    import fastembed
    import fastembed.rerank.cross_encoder as rerank

    a = {m["model"] for m in getattr(embedkit, ours).list_supported_models()}
    b = {m["model"] for m in (getattr(fastembed, theirs, None) or getattr(rerank, theirs)).list_supported_models()}
    assert a == b


def _cut_left(tokenizer) -> None:
    """fastembed's tokenizer set to cut over-long texts at the left (TEI's Left)."""
    tokenizer.enable_truncation(max_length=tokenizer.truncation["max_length"], direction="left")


def test_truncation_side_left_is_fastembed_with_its_tokenizer_cut_at_the_left(edge_inputs, corpus):
    import fastembed
    from fastembed.rerank.cross_encoder import TextCrossEncoder

    path = model_dir("shared", "all-MiniLM-L6-v2-fp32")
    name = "sentence-transformers/all-MiniLM-L6-v2"
    ours = embedkit.TextEmbedding(name, specific_model_path=path, threads=2)
    theirs = fastembed.TextEmbedding(name, specific_model_path=path, threads=2)
    right = list(theirs.embed(edge_inputs))
    _cut_left(theirs.model.tokenizer)
    left = list(theirs.embed(edge_inputs))
    close(ours.embed(edge_inputs, truncation_side="left"), left)
    close(ours.embed(edge_inputs, truncation_side="right"), right)
    close(ours.query_embed(edge_inputs, truncation_side="left"), left)
    assert np.abs(left[6] - right[6]).max() > 1e-2  # the 21 kB input: its end, not its start
    with pytest.raises(embedkit.InvalidInputError, match="truncation_side"):
        list(ours.embed(["x"], truncation_side="middle"))

    # Pairs, cut at the left on the seeded reranker that truncates at 64 tokens.
    path = model_dir("tiny", "rerank-trunc64")
    name = "BAAI/bge-reranker-v2-m3-int8"
    pairs = [(corpus[i], corpus[i + 1]) for i in range(0, 20, 2)]
    ours = embedkit.TextCrossEncoder(name, specific_model_path=path)
    theirs = TextCrossEncoder(name, specific_model_path=path)
    _cut_left(theirs.model.tokenizer)
    close(ours.rerank_pairs(pairs, truncation_side="left"), theirs.rerank_pairs(pairs))


def test_custom_model(edge_inputs):
    import fastembed
    from fastembed.common.model_description import ModelSource as TheirSource, PoolingType as TheirPooling

    from embedkit.common import ModelSource, PoolingType

    path = model_dir("tiny", "cls-384")
    embedkit.TextEmbedding.add_custom_model("embedkit-py-test/custom-mean", pooling=PoolingType.MEAN,
                                            normalization=True, sources=ModelSource(hf="x/y"), dim=384,
                                            model_file="model_optimized.onnx")
    fastembed.TextEmbedding.add_custom_model("embedkit-py-test/custom-mean", pooling=TheirPooling.MEAN,
                                             normalization=True, sources=TheirSource(hf="x/y"), dim=384,
                                             model_file="model_optimized.onnx")
    ours = embedkit.TextEmbedding("embedkit-py-test/custom-mean", specific_model_path=path)
    theirs = fastembed.TextEmbedding("embedkit-py-test/custom-mean", specific_model_path=path)
    close(ours.embed(edge_inputs), theirs.embed(edge_inputs))

    # `output_name`: the graph output to take (here its second, already pooled).
    path = model_dir("tiny", "builtin-384")
    for register, pooling, source in ((embedkit.TextEmbedding.add_custom_model, PoolingType.DISABLED, ModelSource),
                                      (fastembed.TextEmbedding.add_custom_model, TheirPooling.DISABLED, TheirSource)):
        register("embedkit-py-test/custom-output", pooling=pooling, normalization=False, sources=source(hf="x/z"),
                 dim=384, additional_files=["onnx/model.onnx_data"], output_name="sentence_embedding")
    ours = embedkit.TextEmbedding("embedkit-py-test/custom-output", specific_model_path=path)
    theirs = fastembed.TextEmbedding("embedkit-py-test/custom-output", specific_model_path=path)
    close(ours.embed(edge_inputs), theirs.embed(edge_inputs))


def test_int8_precision(tmp_path, corpus):
    """`precision="int8"`: close to fastembed's fp32 vectors but not equal, and the rewritten
    graph cached beside the model file; a bad value is a clear error."""
    import shutil

    import fastembed

    name = "sentence-transformers/all-MiniLM-L6-v2"
    src = model_dir("shared", "all-MiniLM-L6-v2-fp32")
    path = tmp_path / "minilm"
    shutil.copytree(src, path)
    ours = np.array(list(embedkit.TextEmbedding(name, specific_model_path=str(path), threads=2,
                                                precision="int8").embed(corpus[:100])))
    theirs = np.array(list(fastembed.TextEmbedding(name, specific_model_path=str(src),
                                                   threads=2).embed(corpus[:100])))
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cos.min() >= 0.98 and cos.mean() >= 0.995, (cos.min(), cos.mean())
    assert np.abs(ours - theirs).max() > 1e-5, "int8 vectors equal the exact ones"
    assert len(list(path.glob("model.int8-*.onnx"))) == 1
    with pytest.raises(Exception, match="expected exact or int8"):
        embedkit.TextEmbedding(name, specific_model_path=str(path), precision="int4")


@pytest.mark.parametrize("name", ["TextEmbedding", "SparseTextEmbedding", "LateInteractionTextEmbedding",
                                  "ImageEmbedding", "LateInteractionMultimodalEmbedding", "TextCrossEncoder"])
def test_methods_have_fastembeds_signatures(name):
    """Each class, made from the method table, has fastembed's public methods with their
    parameter names and defaults (a caller passing `documents=` or `batch_size` by
    position gets what fastembed gives)."""
    import inspect

    import fastembed
    import fastembed.rerank.cross_encoder as rerank

    theirs = getattr(rerank if name == "TextCrossEncoder" else fastembed, name)
    ours = getattr(embedkit, name)
    methods = ["embed", "query_embed", "passage_embed", "embed_text", "embed_image", "rerank",
               "rerank_pairs", "token_count", "list_supported_models", "get_embedding_size",
               "add_custom_model"]
    for method in methods:
        if not hasattr(theirs, method):
            continue
        assert hasattr(ours, method), f"{name}.{method}"
        want = [(p.name, p.default) for p in inspect.signature(getattr(theirs, method)).parameters.values()
                if p.kind is not p.VAR_KEYWORD]
        got = [(p.name, p.default) for p in inspect.signature(getattr(ours, method)).parameters.values()
               if p.kind is not p.VAR_KEYWORD]
        assert got[:len(want)] == want, f"{name}.{method}: {got} != {want}"
    for attr in ("embedding_size", "token_count"):
        assert hasattr(ours, attr) == hasattr(theirs, attr), f"{name}.{attr}"
    # Where fastembed's add_custom_model is only declared (it raises), ours raises alike.
    try:
        theirs.add_custom_model(model="someone/model", sources={"hf": "someone/model"}, dim=8)
    except NotImplementedError:
        with pytest.raises(NotImplementedError):
            ours.add_custom_model(model="someone/model", sources={"hf": "someone/model"}, dim=8)
    except TypeError:
        pass  # a class that takes custom models: these arguments are not its own

"""BGE-M3 through the Python package, against FlagEmbedding 1.4.2's outputs
(tests/expected/bge-m3.json): `BgeM3Embedding.encode` in the shape of FlagEmbedding's
`BGEM3FlagModel.encode`, on both hub layouts, and fastembed's classes taking the model by
name for the output they stand for."""

import numpy as np
import pytest

import embedkit
from conftest import REPO, model_dir
import json

EXPECTED = json.loads((REPO / "tests" / "expected" / "bge-m3.json").read_text(encoding="utf-8"))
TEXTS = EXPECTED["texts"]
TOL = EXPECTED["tolerance"]
LAYOUTS = [("BAAI/bge-m3", "bge-m3"), ("gpahal/bge-m3-onnx-int8", "bge-m3-int8")]


def stored_rows():
    """Per text: its ColBERT row count and the rows the oracle kept, by index."""
    flat = np.fromfile(REPO / "tests" / "expected" / EXPECTED["colbert_file"], dtype="<f4")
    flat = flat.reshape(-1, EXPECTED["dim"])
    out, at = [], 0
    for n, kept in zip(EXPECTED["colbert_rows"], EXPECTED["colbert_kept"]):
        out.append((n, kept, flat[at:at + len(kept)]))
        at += len(kept)
    return out


ROWS = stored_rows()


def check_dense(got, n=len(TEXTS)):
    got = np.asarray(got)
    assert got.shape == (n, EXPECTED["dim"]) and got.dtype == np.float32
    assert np.abs(got - np.asarray(EXPECTED["dense"][:n])).max() <= TOL


def check_lexical(got, n=len(TEXTS)):
    """`{str(token_id): weight}` per text, as FlagEmbedding keys them."""
    assert len(got) == n
    for weights, want in zip(got, EXPECTED["sparse"][:n]):
        assert all(isinstance(k, str) for k in weights)
        want = dict(zip(want["indices"], want["values"]))
        ours = {int(k): v for k, v in weights.items()}
        for k in set(ours) | set(want):
            assert abs(ours.get(k, 0.0) - want.get(k, 0.0)) <= TOL, k


def check_colbert(got, n=len(TEXTS)):
    assert len(got) == n
    for m, (rows, kept, want) in zip(got, ROWS[:n]):
        assert m.shape == (rows, EXPECTED["dim"]) and m.dtype == np.float32
        assert np.abs(m[kept] - want).max(initial=0.0) <= TOL


@pytest.mark.parametrize("name,folder", LAYOUTS)
def test_encode_matches_flagembedding(name, folder):
    model = embedkit.BgeM3Embedding(name, specific_model_path=model_dir("tiny", folder))
    assert model.embedding_size == EXPECTED["dim"]
    out = model.encode(TEXTS, batch_size=8, return_dense=True, return_sparse=True, return_colbert_vecs=True)
    check_dense(out["dense_vecs"])
    check_lexical(out["lexical_weights"])
    check_colbert(out["colbert_vecs"])
    # FlagEmbedding's defaults: dense only; a single text gives single results.
    one = model.encode(TEXTS[0])
    assert one["lexical_weights"] is None and one["colbert_vecs"] is None
    assert np.abs(one["dense_vecs"] - np.asarray(EXPECTED["dense"][0])).max() <= TOL
    # Queries are embedded as documents.
    q = model.encode_queries(TEXTS[:3], return_sparse=True, return_dense=False)
    assert q["dense_vecs"] is None
    check_lexical(q["lexical_weights"], 3)
    assert model.token_count(TEXTS) == sum(EXPECTED["token_counts"])


def test_a_shorter_max_length_is_refused_not_ignored():
    model = embedkit.BgeM3Embedding("BAAI/bge-m3", specific_model_path=model_dir("tiny", "bge-m3"))
    with pytest.raises(embedkit.UnsupportedError):
        model.encode(TEXTS[:1], max_length=16)


def test_fastembed_classes_take_it_by_name():
    path = model_dir("tiny", "bge-m3")
    dense = embedkit.TextEmbedding("BAAI/bge-m3", specific_model_path=path)
    check_dense(list(dense.embed(TEXTS, batch_size=5)))
    sparse = embedkit.SparseTextEmbedding("BAAI/bge-m3", specific_model_path=path)
    got = [{str(int(i)): float(v) for i, v in zip(e.indices, e.values)} for e in sparse.embed(TEXTS)]
    check_lexical(got)
    late = embedkit.LateInteractionTextEmbedding("BAAI/bge-m3", specific_model_path=path)
    check_colbert(list(late.embed(TEXTS)))
    # Listed by its own class; fastembed's classes list exactly fastembed's models.
    names = [m["model"] for m in embedkit.BgeM3Embedding.list_supported_models()]
    assert names == ["BAAI/bge-m3", "gpahal/bge-m3-onnx-int8"]
    assert all(m["dim"] == 1024 for m in embedkit.BgeM3Embedding.list_supported_models())
    # A class whose output the model lacks refuses it before loading anything.
    with pytest.raises(embedkit.UnsupportedError):
        embedkit.TextCrossEncoder("BAAI/bge-m3", specific_model_path=path)


def test_one_class_serves_any_model_by_its_capabilities():
    path = model_dir("tiny", "bge-m3")
    model = embedkit.EmbeddingModel("BAAI/bge-m3", specific_model_path=path)
    assert {"dense_text", "sparse_text", "multi_vector_text"} <= set(model.capabilities)
    assert model.embedding_size == EXPECTED["dim"]
    # Each output alone, and all three from one pass, against FlagEmbedding's.
    check_dense(list(model.embed(TEXTS, batch_size=5)))
    lexical = [{str(int(i)): float(v) for i, v in zip(e.indices, e.values)}
               for e in model.embed_sparse(TEXTS)]
    check_lexical(lexical)
    check_colbert(list(model.embed_multi(TEXTS)))
    rows = list(model.embed_all(TEXTS, ["dense_text", "sparse_text", "multi_vector_text"]))
    assert len(rows) == len(TEXTS)
    check_dense([r["dense_text"] for r in rows])
    check_lexical([{str(int(i)): float(v) for i, v in zip(r["sparse_text"].indices, r["sparse_text"].values)}
                   for r in rows])
    check_colbert([r["multi_vector_text"] for r in rows])
    # Options by the engine's names; a name it does not know is refused, not ignored.
    assert {"dimensions", "truncate", "output_dtype", "top_k"} <= set(embedkit.CALL_OPTIONS)
    with pytest.raises(TypeError, match="dimension"):
        list(model.embed(TEXTS, dimension=8))
    with pytest.raises(embedkit.InvalidInputError, match="purpose"):
        list(model.embed(TEXTS, purpose="queries"))
    # What it does not compute is refused, not guessed.
    with pytest.raises(embedkit.UnsupportedError):
        list(model.score_pairs([("a query", "a document")]))
    with pytest.raises(embedkit.UnsupportedError):
        list(model.embed_images([b"not an image"]))
    # Its listing covers every family, each model tagged with its registry key.
    listed = {(m["kind"], m["model"]) for m in embedkit.EmbeddingModel.list_supported_models()}
    assert ("bge_m3", "BAAI/bge-m3") in listed
    assert ("dense", "BAAI/bge-small-en-v1.5") in listed
    assert ("late_interaction_multimodal", "Qdrant/colpali-v1.3-fp16") in listed

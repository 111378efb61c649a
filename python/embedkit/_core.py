"""fastembed's classes, names and signatures over the Rust engine (embedkit._embedkit).

Inputs are read lazily, a chunk at a time; each chunk is computed by the engine with the
GIL released, and its vectors are yielded one by one, so a generator of any length is
embedded in constant memory and Ctrl-C is seen between chunks.
"""

from __future__ import annotations

import glob
import inspect
import importlib.util
import io
import itertools
import json
import os
from typing import Any, Iterable, Iterator, Sequence, Union

import numpy as np

from . import _embedkit
from ._embedkit import (DownloadError, EmbedkitError, InvalidInputError, ModelMismatchError,
                        UnknownModelError, UnsupportedError)

# Texts per engine call: large enough to sort by length and fill every session, small
# enough that Ctrl-C and the first vector come quickly.
TEXT_CHUNK = 512

ImageInput = Union[str, "os.PathLike[str]", bytes, Any]


def _runtime_library() -> str | None:
    """The ONNX Runtime library of the installed `onnxruntime` wheel, found without
    importing it (importing would load a second copy of its Python bindings)."""
    explicit = os.environ.get("ORT_DYLIB_PATH")
    if explicit:
        return explicit
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(glob.glob(os.path.join(folder, "capi", "libonnxruntime.so*")))
        found += sorted(glob.glob(os.path.join(folder, "capi", "libonnxruntime*.dylib")))
        found += sorted(glob.glob(os.path.join(folder, "capi", "onnxruntime.dll")))
        if found:
            return found[-1]
    return None


def _device(cuda: Any, providers: Any) -> str:
    """fastembed's `cuda` argument as the engine's device: True is CUDA; False is the
    CPU unless a providers list decides; fastembed's Device enum by its value."""
    if isinstance(cuda, bool):
        if cuda:
            return "cuda"
        return "cpu" if providers is None else "auto"
    value = str(getattr(cuda, "value", cuda)).lower()
    return value if value in ("auto", "cpu", "cuda") else "auto"


def _options(
    cache_dir=None,
    threads=None,
    providers=None,
    cuda=False,
    device_ids=None,
    lazy_load=False,
    device_id=None,
    specific_model_path=None,
    local_files_only=False,
    batch_size=None,
    parallel=None,
    max_batch_tokens=None,
    precision=None,
    **_ignored,
) -> str:
    """The engine's loading options (one type, `embedkit::LoadOptions`) as JSON, with
    fastembed's argument names."""
    if device_ids is None and device_id is not None:
        device_ids = [device_id]
    if providers is not None:
        providers = [p if isinstance(p, str) else p[0] for p in providers]
    options = {
        "cache_dir": None if cache_dir is None else os.fspath(cache_dir),
        "threads": threads,
        "providers": providers,
        "device": _device(cuda, providers),
        "device_ids": device_ids,
        "lazy_load": bool(lazy_load),
        "specific_model_path": None if specific_model_path is None else os.fspath(specific_model_path),
        "local_files_only": bool(local_files_only),
        "batch_size": batch_size,
        "parallel": parallel if parallel else None,
        "max_batch_tokens": max_batch_tokens,
        # "exact" (fastembed's vectors) or "int8" (embedkit's faster tier).
        "precision": None if precision is None else str(precision),
        "runtime_library": _runtime_library(),
    }
    return json.dumps({k: v for k, v in options.items() if v is not None})


def _chunks(items: Iterable[Any], size: int) -> Iterator[list]:
    it = iter(items)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


def _texts(documents: str | Iterable[str]) -> Iterable[str]:
    return [documents] if isinstance(documents, str) else documents


# The per-call option names the engine reads (embedkit::CallOptions: batch_size, purpose,
# dimensions, normalize, top_k, min_weight, truncation_side, truncate, output_dtype, ...).
_CALL_NAMES = frozenset(_embedkit.CALL_OPTIONS)


def _plain(value: Any) -> Any:
    """numpy scalars as JSON takes them."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not an option value")


def _call(kwargs: dict, strict: bool = False, **given: Any) -> str:
    """A call's options as the engine's JSON: `given` (the method's own arguments) over
    the keyword arguments the engine knows. Other keywords are ignored, as fastembed
    ignores them, unless `strict` (embedkit's own classes), where they raise TypeError.
    The one place per-call options cross: an option added to the engine needs no code
    here."""
    unknown = sorted(set(kwargs) - _CALL_NAMES)
    if strict and unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; the engine takes "
                        f"{', '.join(sorted(_CALL_NAMES))}")
    options = {k: v for k, v in kwargs.items() if k in _CALL_NAMES}
    options.update(given)
    return json.dumps({k: v for k, v in options.items() if v is not None}, default=_plain)


def _models(json_text: str) -> list[dict[str, Any]]:
    return json.loads(json_text)


class SparseEmbedding:
    """A sparse vector: `indices` (int64) and `values` (float32) numpy arrays."""

    __slots__ = ("values", "indices")

    def __init__(self, values: np.ndarray, indices: np.ndarray):
        self.values = values
        self.indices = indices

    def as_object(self) -> dict[str, np.ndarray]:
        return {"values": self.values, "indices": self.indices}

    def as_dict(self) -> dict[int, float]:
        return {int(i): float(v) for i, v in zip(self.indices, self.values)}

    @classmethod
    def from_dict(cls, data: dict[int, float]) -> "SparseEmbedding":
        if not data:
            return cls(values=np.array([]), indices=np.array([], dtype=np.int64))
        indices, values = zip(*data.items())
        return cls(values=np.array(values), indices=np.array(indices))

    def __repr__(self) -> str:
        return f"SparseEmbedding(values={self.values!r}, indices={self.indices!r})"


def _image_item(image: ImageInput) -> Any:
    """A path or file bytes for the engine; an in-memory Pillow image is passed as PNG
    (lossless, mode kept)."""
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    if hasattr(image, "save") and hasattr(image, "mode"):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue()
    raise TypeError(f"unsupported image input {type(image).__name__}: give a path, bytes or a PIL image")


def _images(images: ImageInput | Iterable[ImageInput]) -> Iterable[ImageInput]:
    if isinstance(images, (str, bytes, bytearray, os.PathLike)) or hasattr(images, "mode"):
        return [images]
    return images



# --- What the classes compute: one table -------------------------------------------
#
# Every streaming method of every class is made by `_method` from a row of `_METHODS`:
# which engine call it makes (`_OPS`: the call of `embedkit._embedkit.Model` and how its
# items become fastembed's), what its inputs are (`_INPUTS`), its purpose, and its
# default batch size. A class is its registry table, the capabilities it needs and its
# rows; what is left by hand below is fastembed's API around the engine
# (`add_custom_model`, `embedding_size`, BGE-M3's `encode`, ...).

def _sparse(row: tuple[np.ndarray, np.ndarray]) -> SparseEmbedding:
    """The engine's (indices, values) of one text as fastembed's SparseEmbedding."""
    indices, values = row
    return SparseEmbedding(values=values, indices=indices)


# engine call -> how each item it returns becomes fastembed's value
_OPS: dict[str, Any] = {
    "dense": None,
    "sparse": _sparse,
    "multi": None,
    "muvera": None,
    "dense_images": None,
    "multi_images": None,
    "scores": None,
}

# input kind -> (one argument as an iterable, one item as the engine takes it, the
# smallest chunk, whether chunks are whole batches: graphs whose outputs depend on the
# batch must get fastembed's batches)
_INPUTS: dict[str, tuple[Any, Any, int, bool]] = {
    "texts": (_texts, None, TEXT_CHUNK, False),
    "images": (_images, _image_item, 64, False),
    "pairs": (lambda pairs: pairs, tuple, TEXT_CHUNK, False),
    "batched_texts": (_texts, None, TEXT_CHUNK, True),
    "batched_images": (_images, _image_item, 64, True),
}


def _method(name: str, arg: str, op: str, inputs: str, purpose: str | None, batch: int | None,
            doc: str, strict: bool = False) -> Any:
    """A streaming method from its row, with fastembed's signature: `(arg, batch_size=batch,
    parallel=None, **kwargs)` when `batch` is given, else `(arg, **kwargs)` (where a
    `batch_size` keyword is still read); the engine call per chunk; fastembed's values
    out. `strict` (embedkit's own `EmbeddingModel`): an unknown keyword raises TypeError."""
    as_items, as_engine, least, whole = _INPUTS[inputs]
    wrap = _OPS[op]
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD), P(arg, P.POSITIONAL_OR_KEYWORD)]
    if batch is not None:
        params += [P("batch_size", P.POSITIONAL_OR_KEYWORD, default=batch),
                   P("parallel", P.POSITIONAL_OR_KEYWORD, default=None)]
    params.append(P("kwargs", P.VAR_KEYWORD))
    signature = inspect.Signature(params)

    def stream(self: Any, items: Any, batch_size: int | None, kwargs: dict) -> Iterator[Any]:
        given = {"batch_size": batch_size}
        if purpose is not None:
            given["purpose"] = purpose
        options = _call(kwargs, strict, **given)
        size = (batch_size * max(1, least // batch_size) if whole and batch_size
                else max(least, batch_size or 0))
        call = getattr(self._model, op)
        for chunk in _chunks(as_items(items), size):
            out = call(chunk if as_engine is None else [as_engine(i) for i in chunk], options)
            yield from (out if wrap is None else map(wrap, out))

    def method(*args: Any, **kwargs: Any) -> Iterator[Any]:
        given = signature.bind(*args, **kwargs).arguments
        extra = dict(given.get("kwargs", {}))
        batch_size = given.get("batch_size", batch) if batch is not None else extra.pop("batch_size", None)
        return stream(given["self"], given[arg], batch_size, extra)

    method.__name__ = name
    method.__doc__ = doc
    method.__signature__ = signature
    return method


_EMBED_DOC = ("One {what} per input, lazily. Per-call options are the engine's "
              "(`embedkit.CALL_OPTIONS`): {options}; other keywords are ignored, as "
              "fastembed ignores them. `parallel` is accepted for fastembed's signature: the "
              "engine's sessions are set when the model is built and use every core.")
_TEXT_OPTIONS = ('`truncation_side="left"` keeps the end of an over-long text; `truncate=False` '
                 "raises InvalidInputError on one instead of cutting it")
_DENSE_OPTIONS = ("`dimensions=N` shortens the vectors of models trained for it (Matryoshka), "
                  '`normalize=True` L2-normalizes them, `output_dtype="int8"` scales them to '
                  'int8 and `"binary"` packs their sign bits (numpy\'s `packbits`); ' + _TEXT_OPTIONS)
_SPARSE_OPTIONS = "`top_k=K` keeps the K largest weights, `min_weight=W` drops those below W; " + _TEXT_OPTIONS


def _text_rows(op: str, what: str, options: str, passage: str) -> list[tuple]:
    """embed / query_embed / passage_embed of a text family."""
    doc = _EMBED_DOC.format(what=what, options=options)
    return [("embed", "documents", op, "texts", "document", 256, doc),
            ("query_embed", "query", op, "texts", "query", None, doc + " Embedded as queries."),
            ("passage_embed", "texts", op, "texts", passage, None, doc + " Embedded as passages.")]


_STRICT_DOC = ("{what}. Options are the engine's per-call options by name "
               "(`embedkit.CALL_OPTIONS`: batch_size, purpose, dimensions, normalize, top_k, "
               "min_weight, truncation_side, truncate, output_dtype, muvera, top_n); an option "
               "the call does not use is ignored, an unknown name raises TypeError.")

# EmbeddingModel's methods, one per capability: (name, engine call, inputs, what it gives);
# its row of `_METHODS` makes them, strict about option names.
_HANDLE_ROWS = [
    ("embed", "dense", "texts", "One dense vector per text (`dense_text`), of `output_dtype`"),
    ("embed_sparse", "sparse", "texts", "One sparse vector per text (`sparse_text`)"),
    ("embed_multi", "multi", "texts", "One (tokens, dim) matrix per text (`multi_vector_text`)"),
    ("embed_muvera", "muvera", "texts",
     "One MUVERA encoding per text (from `multi_vector_text`), as fastembed's "
     "`Muvera.process_document` gives it, or `process_query` with `purpose=\"query\"`; "
     "`muvera={\"k_sim\": 5, \"dim_proj\": 16, \"r_reps\": 20, \"random_seed\": 42}` sets its "
     "parameters (these are the defaults)"),
    ("embed_images", "dense_images", "images", "One dense vector per image (`dense_image`)"),
    ("embed_images_multi", "multi_images", "images",
     "One (patches, dim) matrix per image (`multi_vector_image`)"),
    ("score_pairs", "scores", "pairs", "One relevance score per (query, document) pair (`pair_scores`)"),
]


# class -> (registry table, capabilities one of which it needs, its streaming methods)
_METHODS: dict[str, tuple[str, tuple[str, ...], list[tuple]]] = {
    "TextEmbedding": ("dense", ("dense_text",),
                      _text_rows("dense", "dense vector", _DENSE_OPTIONS, "passage")),
    "SparseTextEmbedding": ("sparse", ("sparse_text",),
                            _text_rows("sparse", "sparse vector", _SPARSE_OPTIONS, "document")),
    "LateInteractionTextEmbedding": ("late_interaction", ("multi_vector_text",),
                                     _text_rows("multi", "(tokens, dim) matrix", _TEXT_OPTIONS, "document")),
    "ImageEmbedding": ("image", ("dense_image",), [
        ("embed", "images", "dense_images", "images", None, 16,
         _EMBED_DOC.format(what="dense vector", options='`output_dtype="int8"` or `"binary"`'))]),
    "LateInteractionMultimodalEmbedding": (
        "late_interaction_multimodal", ("multi_vector_text", "multi_vector_image"), [
            ("embed_text", "documents", "multi", "batched_texts", None, 256,
             _EMBED_DOC.format(what="(tokens, dim) matrix", options=_TEXT_OPTIONS)),
            ("embed_image", "images", "multi_images", "batched_images", None, 2,
             _EMBED_DOC.format(what="(patches, dim) matrix", options="none"))]),
    "TextCrossEncoder": ("rerank", ("pair_scores",), [
        ("rerank_pairs", "pairs", "scores", "pairs", None, 64,
         _EMBED_DOC.format(what="score of a (query, document) pair", options=_TEXT_OPTIONS))]),
    "BgeM3Embedding": ("bge_m3", ("dense_text", "sparse_text", "multi_vector_text"), []),
    # any registry model (its own list_supported_models), no capability required
    "EmbeddingModel": ("", (), [(name, inputs, op, inputs, None, None, _STRICT_DOC.format(what=what))
                                for name, op, inputs, what in _HANDLE_ROWS]),
}


class _Model:
    """What every class shares: fastembed's constructor arguments, the one engine class
    they build (`embedkit._embedkit.Model`, the library's capability handle), and
    `list_supported_models`. A class's table and capabilities come from `_METHODS`."""

    _kind: str  # the registry table listed by list_supported_models
    _wanted: tuple[str, ...]  # capabilities, one of which the model must offer
    _strict = False  # whether its methods raise TypeError on an unknown keyword

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        row = _METHODS.get(cls.__name__)
        if row is None:
            return
        cls._kind, cls._wanted, methods = row
        for name, arg, op, inputs, purpose, batch, doc in methods:
            setattr(cls, name, _method(name, arg, op, inputs, purpose, batch, doc, cls._strict))

    def __init__(self, model_name: str, cache_dir: str | None = None, threads: int | None = None,
                 providers: Sequence[Any] | None = None, cuda: Any = False,
                 device_ids: list[int] | None = None, lazy_load: bool = False,
                 device_id: int | None = None, specific_model_path: str | None = None,
                 local_files_only: bool = False, batch_size: int | None = None,
                 parallel: int | None = None, **kwargs: Any):
        self.model_name = model_name
        self.cache_dir = cache_dir
        self.threads = threads
        settings = self._settings(kwargs)
        self._model = _embedkit.Model(model_name, _options(
            cache_dir, threads, providers, cuda, device_ids, lazy_load, device_id,
            specific_model_path, local_files_only, batch_size, parallel, **kwargs),
            json.dumps(settings), list(self._wanted))

    def _settings(self, kwargs: dict) -> dict | None:
        """The family's builder settings (JSON object), taken out of `kwargs`."""
        return None

    @property
    def capabilities(self) -> list[str]:
        """What the model computes (`dense_text`, `sparse_text`, ...)."""
        return self._model.capabilities

    @classmethod
    def list_supported_models(cls) -> list[dict[str, Any]]:
        return _models(_embedkit.list_supported_models(cls._kind))


class _Sized:
    """fastembed's `embedding_size` and `get_embedding_size`, for the classes that have them."""

    @property
    def embedding_size(self) -> int | None:
        return self._model.embedding_size

    @classmethod
    def get_embedding_size(cls, model_name: str) -> int:
        for m in cls.list_supported_models():
            if m["model"].lower() == model_name.lower():
                return m["dim"]
        raise ValueError(f"Embedding size for model {model_name} was None. Available models: "
                         f"{[m['model'] for m in cls.list_supported_models()]}")


class _NoCustomModels:
    """fastembed 0.9.1 declares `add_custom_model` here and raises; so does embedkit."""

    @classmethod
    def add_custom_model(cls, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"{cls.__name__}.add_custom_model: custom models are for "
                                  "TextEmbedding and TextCrossEncoder (as in fastembed 0.9.1)")


class _Counted:
    """fastembed's `token_count` of texts."""

    def token_count(self, texts: str | Iterable[str], batch_size: int = 1024, **kwargs: Any) -> int:
        return sum(self._model.token_count(c) for c in _chunks(_texts(texts), batch_size))


class TextEmbedding(_Sized, _Counted, _Model):
    """Dense text embeddings, as fastembed's `TextEmbedding`."""

    def __init__(self, model_name: str = "BAAI/bge-small-en-v1.5", *args: Any, **kwargs: Any):
        super().__init__(model_name, *args, **kwargs)

    def _settings(self, kwargs: dict) -> dict | None:
        settings = {k: kwargs.pop(k) for k in ("add_prefixes", "task_id") if kwargs.get(k) is not None}
        return settings or None

    @classmethod
    def add_custom_model(cls, model: str, pooling: Any, normalization: bool, sources: Any, dim: int,
                         model_file: str = "onnx/model.onnx", description: str = "", license: str = "",
                         size_in_gb: float = 0.0, additional_files: list[str] | None = None,
                         output_name: str | None = None) -> None:
        from .common import _pooling_name, _sources_dict

        _embedkit.add_custom_text_model(json.dumps({
            "model": model, "pooling": _pooling_name(pooling), "normalization": normalization,
            "sources": _sources_dict(sources), "dim": dim, "model_file": model_file,
            "description": description, "license": license, "size_in_gb": size_in_gb,
            "additional_files": additional_files or [], "output_name": output_name}))



class SparseTextEmbedding(_Counted, _NoCustomModels, _Model):
    """Sparse text embeddings (SPLADE, BM25, BM42, MiniCOIL), as fastembed's."""

    # fastembed's keyword arguments of the sparse kinds (BM25, MiniCOIL, BM42); a model
    # refuses one its kind does not read instead of ignoring it.
    _SETTINGS = ("k", "b", "avg_len", "language", "token_max_length", "disable_stemmer", "alpha")

    def _settings(self, kwargs: dict) -> dict | None:
        given = {k: kwargs.pop(k) for k in self._SETTINGS if kwargs.get(k) is not None}
        return given or None


class LateInteractionTextEmbedding(_Sized, _NoCustomModels, _Model):
    """ColBERT-family token vectors, as fastembed's."""

    def token_count(self, texts: str | Iterable[str], batch_size: int = 1024, is_doc: bool = True,
                    include_extension: bool = False, **kwargs: Any) -> int:
        purpose = "document" if is_doc else "query"
        return sum(self._model.token_count(c, purpose, include_extension)
                   for c in _chunks(_texts(texts), batch_size))


class ImageEmbedding(_Sized, _NoCustomModels, _Model):
    """Dense image embeddings, as fastembed's `ImageEmbedding`."""


class LateInteractionMultimodalEmbedding(_Sized, _NoCustomModels, _Model):
    """ColPali / ColModernVBert, as fastembed's."""

    def token_count(self, texts: str | Iterable[str], batch_size: int = 1024, include_extension: bool = False,
                    **kwargs: Any) -> int:
        return sum(self._model.token_count(c, "document", include_extension)
                   for c in _chunks(_texts(texts), batch_size))


class TextCrossEncoder(_Model):
    """Cross-encoder reranking, as fastembed's `TextCrossEncoder`."""

    @classmethod
    def add_custom_model(cls, model: str, sources: Any, model_file: str = "onnx/model.onnx",
                         description: str = "", license: str = "", size_in_gb: float = 0.0,
                         additional_files: list[str] | None = None) -> None:
        from .common import _sources_dict

        _embedkit.add_custom_reranker(json.dumps({
            "model": model, "sources": _sources_dict(sources), "model_file": model_file,
            "description": description, "license": license, "size_in_gb": size_in_gb,
            "additional_files": additional_files or []}))

    def rerank(self, query: str, documents: Iterable[str], batch_size: int = 64,
               parallel: int | None = None, **kwargs: Any) -> Iterator[float]:
        """One score per document against `query`, in input order."""
        return self.rerank_pairs(((query, d) for d in _texts(documents)), batch_size, **kwargs)

    def token_count(self, pairs: Iterable[tuple[str, str]], batch_size: int = 1024, **kwargs: Any) -> int:
        return sum(self._model.pair_token_count([(q, d) for q, d in c]) for c in _chunks(pairs, batch_size))


class BgeM3Embedding(_Sized, _Counted, _Model):
    """BGE-M3's three embeddings of each text from one pass: dense vectors, lexical
    (sparse) weights and ColBERT multi-vectors. `encode` has the shape of FlagEmbedding's
    `BGEM3FlagModel.encode`; queries are embedded exactly as documents."""

    def __init__(self, model_name: str = "BAAI/bge-m3", *args: Any, **kwargs: Any):
        super().__init__(model_name, *args, **kwargs)

    def encode(self, sentences: str | list[str], batch_size: int = 256, max_length: int | None = None,
               return_dense: bool = True, return_sparse: bool = False, return_colbert_vecs: bool = False,
               **kwargs: Any) -> dict[str, Any]:
        """FlagEmbedding's result: `dense_vecs` (an (n, dim) float32 array),
        `lexical_weights` (one `{str(token_id): weight}` dict per text, as FlagEmbedding
        keys them) and `colbert_vecs` (one (tokens - 1, dim) array per text); the outputs
        not asked for are None. A single string gives single results. Texts are truncated
        at the model's length (8192 tokens for BGE-M3); a shorter `max_length` is refused
        rather than ignored."""
        limit = self._model.max_length
        if max_length is not None and limit is not None and max_length < limit:
            raise UnsupportedError(f"max_length={max_length}: embedkit truncates at the model's {limit} tokens; "
                                   "per-call truncation is not supported yet")
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        wanted = [c for c, on in (("dense_text", return_dense), ("sparse_text", return_sparse),
                                  ("multi_vector_text", return_colbert_vecs)) if on]
        dense, sparse, colbert = [], [], []
        options = _call(kwargs, batch_size=batch_size, purpose="document")
        for chunk in _chunks(texts, max(TEXT_CHUNK, batch_size)):
            d, s, c = self._model.outputs(chunk, wanted, options)
            if d is not None:
                dense.append(d)
            if s is not None:
                sparse.extend({str(int(i)): float(v) for i, v in zip(ids, vals)} for ids, vals in s)
            if c is not None:
                colbert.extend(c)
        dim = self._model.embedding_size
        out = {
            "dense_vecs": (np.concatenate(dense) if dense else np.zeros((0, dim), np.float32)) if return_dense else None,
            "lexical_weights": sparse if return_sparse else None,
            "colbert_vecs": colbert if return_colbert_vecs else None,
        }
        if single:
            out = {k: (v[0] if v is not None else None) for k, v in out.items()}
        return out

    def encode_queries(self, queries: str | list[str], **kwargs: Any) -> dict[str, Any]:
        return self.encode(queries, **kwargs)

    def encode_corpus(self, corpus: str | list[str], **kwargs: Any) -> dict[str, Any]:
        return self.encode(corpus, **kwargs)


class EmbeddingModel(_Sized, _Counted, _Model):
    """Any model of the registry, by what it can compute (the library's capability
    handle): `capabilities` lists its operations, and an operation it lacks raises
    `UnsupportedError`. A model family added to the engine is usable here with no edit
    to this package. Vectors come as fastembed's classes give them."""

    _strict = True

    @classmethod
    def list_supported_models(cls) -> list[dict[str, Any]]:
        """Every family's models, each with its registry key as `kind`."""
        out = []
        for kind in _embedkit.model_kinds():
            out.extend(dict(m, kind=kind) for m in _models(_embedkit.list_supported_models(kind)))
        return out

    def rank(self, query: str, documents: Iterable[str], **options: Any) -> list[dict[str, Any]]:
        """The documents ranked against `query` (`pair_scores`), best first, as
        `{"index", "score"}`; `top_n=N` keeps the best N."""
        opts = _call(options, strict=True)
        return [{"index": i, "score": s} for i, s in self._model.rank(query, list(_texts(documents)), opts)]

    def embed_all(self, texts: str | Iterable[str], outputs: Sequence[str], **options: Any) -> Iterator[dict[str, Any]]:
        """Several outputs of each text from one pass of a model that computes them
        together (`outputs`: capability names such as `dense_text`, `sparse_text`,
        `multi_vector_text`): one dict per text, keyed by capability."""
        wanted = list(outputs)
        opts = _call(options, strict=True)
        for chunk in _chunks(_texts(texts), max(TEXT_CHUNK, options.get("batch_size") or 0)):
            dense, sparse, multi = self._model.outputs(chunk, wanted, opts)
            for i in range(len(chunk)):
                row: dict[str, Any] = {}
                if dense is not None:
                    row["dense_text"] = dense[i]
                if sparse is not None:
                    row["sparse_text"] = _sparse(sparse[i])
                if multi is not None:
                    row["multi_vector_text"] = multi[i]
                yield row


__all__ = [
    "BgeM3Embedding", "EmbeddingModel", "EmbedkitError", "ImageEmbedding", "LateInteractionMultimodalEmbedding",
    "LateInteractionTextEmbedding", "SparseEmbedding", "SparseTextEmbedding",
    "TextCrossEncoder", "TextEmbedding",
]

"""fastembed's classes, names and signatures over the Rust engine (embedkit._embedkit).

Inputs are read lazily, a chunk at a time; each chunk is computed by the engine with the
GIL released, and its vectors are yielded one by one, so a generator of any length is
embedded in constant memory and Ctrl-C is seen between chunks.
"""

from __future__ import annotations

import glob
import importlib.util
import io
import itertools
import json
import os
from typing import Any, Iterable, Iterator, Sequence, Union

import numpy as np

from . import _embedkit
from ._embedkit import (
    DownloadError,
    EmbedkitError,
    InvalidInputError,
    ModelMismatchError,
    UnknownModelError,
    UnsupportedError,
)

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


class _Model:
    """What every class shares: fastembed's constructor arguments, the one engine class
    they build (`embedkit._embedkit.Model`, the library's capability handle), and
    `list_supported_models`. A class says only which registry table it lists (`_kind`),
    which capabilities it needs (`_wanted`: one of them) and its builder settings."""

    _kind: str  # the registry table listed by list_supported_models
    _wanted: tuple[str, ...]  # capabilities, one of which the model must offer

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


class TextEmbedding(_Model):
    """Dense text embeddings, as fastembed's `TextEmbedding`."""

    _kind = "dense"
    _wanted = ("dense_text",)

    def __init__(self, model_name: str = "BAAI/bge-small-en-v1.5", *args: Any, **kwargs: Any):
        super().__init__(model_name, *args, **kwargs)

    def _settings(self, kwargs: dict) -> dict | None:
        settings = {k: kwargs.pop(k) for k in ("add_prefixes", "task_id") if kwargs.get(k) is not None}
        return settings or None

    @classmethod
    def add_custom_model(cls, model: str, pooling: Any, normalization: bool, sources: Any, dim: int,
                         model_file: str = "onnx/model.onnx", description: str = "", license: str = "",
                         size_in_gb: float = 0.0, additional_files: list[str] | None = None) -> None:
        from .common import _pooling_name, _sources_dict

        _embedkit.add_custom_text_model(json.dumps({
            "model": model, "pooling": _pooling_name(pooling), "normalization": normalization,
            "sources": _sources_dict(sources), "dim": dim, "model_file": model_file,
            "description": description, "license": license, "size_in_gb": size_in_gb,
            "additional_files": additional_files or []}))

    @classmethod
    def get_embedding_size(cls, model_name: str) -> int:
        for m in cls.list_supported_models():
            if m["model"].lower() == model_name.lower():
                return m["dim"]
        raise ValueError(f"Embedding size for model {model_name} was None. Available models: "
                         f"{[m['model'] for m in cls.list_supported_models()]}")

    @property
    def embedding_size(self) -> int:
        return self._model.embedding_size

    def _stream(self, documents: Iterable[str], batch_size: int | None, purpose: str,
                kwargs: dict) -> Iterator[np.ndarray]:
        options = _call(kwargs, batch_size=batch_size, purpose=purpose)
        for chunk in _chunks(documents, max(TEXT_CHUNK, batch_size or 0)):
            yield from self._model.dense(chunk, options)

    def embed(self, documents: str | Iterable[str], batch_size: int = 256, parallel: int | None = None,
              **kwargs: Any) -> Iterator[np.ndarray]:
        """One vector per document, lazily. `dimensions=N` shortens the vectors of
        models trained for it (Matryoshka) and `normalize=True` L2-normalizes them;
        `output_dtype="int8"` scales each to int8 (±127) and `"binary"` packs its sign
        bits into uint8 (numpy's `packbits`), the last steps.
        `truncation_side="left"` keeps the end of an over-long text ("right", its start;
        default: where the model's tokenizer configuration says); `truncate=False`
        raises InvalidInputError on an over-long text instead of cutting it.
        `parallel` is accepted for fastembed's signature; the engine's sessions are set
        when the model is built (`parallel=` of the constructor) and already use every
        core by default."""
        return self._stream(_texts(documents), batch_size, "document", kwargs)

    def query_embed(self, query: str | Iterable[str], **kwargs: Any) -> Iterator[np.ndarray]:
        return self._stream(_texts(query), kwargs.get("batch_size"), "query", kwargs)

    def passage_embed(self, texts: Iterable[str], **kwargs: Any) -> Iterator[np.ndarray]:
        return self._stream(_texts(texts), kwargs.get("batch_size"), "passage", kwargs)

    def token_count(self, texts: str | Iterable[str], batch_size: int = 1024, **kwargs: Any) -> int:
        return sum(self._model.token_count(c) for c in _chunks(_texts(texts), batch_size))


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


class SparseTextEmbedding(_Model):
    """Sparse text embeddings (SPLADE, BM25, BM42, MiniCOIL), as fastembed's."""

    _kind = "sparse"
    _wanted = ("sparse_text",)

    # fastembed's keyword arguments of the sparse kinds (BM25, MiniCOIL, BM42); a model
    # refuses one its kind does not read instead of ignoring it.
    _SETTINGS = ("k", "b", "avg_len", "language", "token_max_length", "disable_stemmer", "alpha")

    def _settings(self, kwargs: dict) -> dict | None:
        given = {k: kwargs.pop(k) for k in self._SETTINGS if kwargs.get(k) is not None}
        return given or None

    def _stream(self, documents: Iterable[str], batch_size: int | None, purpose: str,
                kwargs: dict) -> Iterator[SparseEmbedding]:
        options = _call(kwargs, batch_size=batch_size, purpose=purpose)
        for chunk in _chunks(documents, max(TEXT_CHUNK, batch_size or 0)):
            for indices, values in self._model.sparse(chunk, options):
                yield SparseEmbedding(values=values, indices=indices)

    def embed(self, documents: str | Iterable[str], batch_size: int = 256, parallel: int | None = None,
              **kwargs: Any) -> Iterator[SparseEmbedding]:
        """One sparse vector per document; `top_k=K` keeps the K largest weights and
        `min_weight=W` drops those below W."""
        return self._stream(_texts(documents), batch_size, "document", kwargs)

    def query_embed(self, query: str | Iterable[str], **kwargs: Any) -> Iterator[SparseEmbedding]:
        return self._stream(_texts(query), None, "query", kwargs)

    def passage_embed(self, texts: Iterable[str], **kwargs: Any) -> Iterator[SparseEmbedding]:
        return self._stream(_texts(texts), kwargs.get("batch_size"), "document", kwargs)

    def token_count(self, texts: str | Iterable[str], batch_size: int = 1024, **kwargs: Any) -> int:
        return sum(self._model.token_count(c) for c in _chunks(_texts(texts), batch_size))


class LateInteractionTextEmbedding(_Model):
    """ColBERT-family token vectors, as fastembed's."""

    _kind = "late_interaction"
    _wanted = ("multi_vector_text",)

    @property
    def embedding_size(self) -> int:
        return self._model.embedding_size

    def _stream(self, texts: Iterable[str], batch_size: int | None, purpose: str,
                kwargs: dict) -> Iterator[np.ndarray]:
        options = _call(kwargs, batch_size=batch_size, purpose=purpose)
        for chunk in _chunks(texts, max(TEXT_CHUNK, batch_size or 0)):
            yield from self._model.multi(chunk, options)

    def embed(self, documents: str | Iterable[str], batch_size: int = 256, parallel: int | None = None,
              **kwargs: Any) -> Iterator[np.ndarray]:
        return self._stream(_texts(documents), batch_size, "document", kwargs)

    def query_embed(self, query: str | Iterable[str], **kwargs: Any) -> Iterator[np.ndarray]:
        return self._stream(_texts(query), None, "query", kwargs)

    def passage_embed(self, texts: Iterable[str], **kwargs: Any) -> Iterator[np.ndarray]:
        return self._stream(_texts(texts), kwargs.get("batch_size"), "document", kwargs)

    def token_count(self, texts: str | Iterable[str], batch_size: int = 1024, is_doc: bool = True,
                    include_extension: bool = False, **kwargs: Any) -> int:
        purpose = "document" if is_doc else "query"
        return sum(self._model.token_count(c, purpose, include_extension)
                   for c in _chunks(_texts(texts), batch_size))


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


class ImageEmbedding(_Model):
    """Dense image embeddings, as fastembed's `ImageEmbedding`."""

    _kind = "image"
    _wanted = ("dense_image",)

    @property
    def embedding_size(self) -> int:
        return self._model.embedding_size

    def embed(self, images: ImageInput | Iterable[ImageInput], batch_size: int = 16,
              parallel: int | None = None, **kwargs: Any) -> Iterator[np.ndarray]:
        options = _call(kwargs, batch_size=batch_size)
        for chunk in _chunks(_images(images), max(64, batch_size)):
            yield from self._model.dense_images([_image_item(i) for i in chunk], options)


class LateInteractionMultimodalEmbedding(_Model):
    """ColPali / ColModernVBert, as fastembed's."""

    _kind = "late_interaction_multimodal"
    _wanted = ("multi_vector_text", "multi_vector_image")

    @property
    def embedding_size(self) -> int:
        return self._model.embedding_size

    # These graphs' outputs depend on the batch, so chunks are whole multiples of it and
    # the batches are the ones fastembed forms.
    def embed_text(self, documents: str | Iterable[str], batch_size: int = 256,
                   parallel: int | None = None, **kwargs: Any) -> Iterator[np.ndarray]:
        options = _call(kwargs, batch_size=batch_size)
        for chunk in _chunks(_texts(documents), batch_size * max(1, TEXT_CHUNK // batch_size)):
            yield from self._model.multi(chunk, options)

    def embed_image(self, images: ImageInput | Iterable[ImageInput], batch_size: int = 16,
                    parallel: int | None = None, **kwargs: Any) -> Iterator[np.ndarray]:
        options = _call(kwargs, batch_size=batch_size)
        for chunk in _chunks(_images(images), batch_size * max(1, 64 // batch_size)):
            yield from self._model.multi_images([_image_item(i) for i in chunk], options)


class TextCrossEncoder(_Model):
    """Cross-encoder reranking, as fastembed's `TextCrossEncoder`."""

    _kind = "rerank"
    _wanted = ("pair_scores",)

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
        return self.rerank_pairs(((query, d) for d in _texts(documents)), batch_size, **kwargs)

    def rerank_pairs(self, pairs: Iterable[tuple[str, str]], batch_size: int = 64,
                     parallel: int | None = None, **kwargs: Any) -> Iterator[float]:
        """One score per pair; `truncation_side="left"` cuts over-long texts at the left."""
        options = _call(kwargs, batch_size=batch_size)
        for chunk in _chunks(pairs, max(TEXT_CHUNK, batch_size)):
            yield from self._model.scores([(q, d) for q, d in chunk], options)

    def token_count(self, pairs: Iterable[tuple[str, str]], batch_size: int = 1024, **kwargs: Any) -> int:
        return sum(self._model.pair_token_count([(q, d) for q, d in c]) for c in _chunks(pairs, batch_size))


class BgeM3Embedding(_Model):
    """BGE-M3's three embeddings of each text from one pass: dense vectors, lexical
    (sparse) weights and ColBERT multi-vectors. `encode` has the shape of FlagEmbedding's
    `BGEM3FlagModel.encode`; queries are embedded exactly as documents."""

    _kind = "bge_m3"
    _wanted = ("dense_text", "sparse_text", "multi_vector_text")

    def __init__(self, model_name: str = "BAAI/bge-m3", *args: Any, **kwargs: Any):
        super().__init__(model_name, *args, **kwargs)

    @property
    def embedding_size(self) -> int:
        return self._model.embedding_size

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

    def token_count(self, texts: str | Iterable[str], batch_size: int = 1024, **kwargs: Any) -> int:
        return sum(self._model.token_count(c) for c in _chunks(_texts(texts), batch_size))


class EmbeddingModel(_Model):
    """Any model of the registry, by what it can compute (the library's capability
    handle): `capabilities` lists its operations, and an operation it lacks raises
    `UnsupportedError`. A model family added to the engine is usable here with no edit
    to this package. Vectors come as fastembed's classes give them."""

    _wanted = ()

    @classmethod
    def list_supported_models(cls) -> list[dict[str, Any]]:
        """Every family's models, each with its registry key as `kind`."""
        out = []
        for kind in _embedkit.model_kinds():
            out.extend(dict(m, kind=kind) for m in _models(_embedkit.list_supported_models(kind)))
        return out

    @property
    def embedding_size(self) -> int | None:
        return self._model.embedding_size

    # Each method takes the engine's per-call options by name (`embedkit.CALL_OPTIONS`):
    # batch_size, purpose ("document", "query", "passage"), dimensions, normalize,
    # top_k / min_weight (sparse pruning), truncation_side ("left", "right"), truncate
    # (False: an over-long text raises), output_dtype ("float32", "int8", "binary");
    # an option the call does not use is ignored, an unknown name raises TypeError.

    @staticmethod
    def _calls(items: Iterable[Any], options: dict, least: int = TEXT_CHUNK) -> tuple[str, Iterator[list]]:
        """A call's options as the engine's JSON (an unknown name raises TypeError) and its
        inputs in chunks of at least `least`, or of the batch size when larger."""
        return _call(options, strict=True), _chunks(items, max(least, options.get("batch_size") or 0))

    def embed(self, texts: str | Iterable[str], **options: Any) -> Iterator[np.ndarray]:
        """One dense vector per text (`dense_text`), of `output_dtype`."""
        opts, chunks = self._calls(_texts(texts), options)
        for chunk in chunks:
            yield from self._model.dense(chunk, opts)

    def embed_sparse(self, texts: str | Iterable[str], **options: Any) -> Iterator[SparseEmbedding]:
        """One sparse vector per text (`sparse_text`)."""
        opts, chunks = self._calls(_texts(texts), options)
        for chunk in chunks:
            for indices, values in self._model.sparse(chunk, opts):
                yield SparseEmbedding(values=values, indices=indices)

    def embed_multi(self, texts: str | Iterable[str], **options: Any) -> Iterator[np.ndarray]:
        """One (tokens, dim) matrix per text (`multi_vector_text`)."""
        opts, chunks = self._calls(_texts(texts), options)
        for chunk in chunks:
            yield from self._model.multi(chunk, opts)

    def embed_images(self, images: ImageInput | Iterable[ImageInput], **options: Any) -> Iterator[np.ndarray]:
        """One dense vector per image (`dense_image`)."""
        opts, chunks = self._calls(_images(images), options, 64)
        for chunk in chunks:
            yield from self._model.dense_images([_image_item(i) for i in chunk], opts)

    def embed_images_multi(self, images: ImageInput | Iterable[ImageInput], **options: Any) -> Iterator[np.ndarray]:
        """One (patches, dim) matrix per image (`multi_vector_image`)."""
        opts, chunks = self._calls(_images(images), options, 64)
        for chunk in chunks:
            yield from self._model.multi_images([_image_item(i) for i in chunk], opts)

    def score_pairs(self, pairs: Iterable[tuple[str, str]], **options: Any) -> Iterator[float]:
        """One relevance score per (query, document) pair (`pair_scores`)."""
        opts, chunks = self._calls(pairs, options)
        for chunk in chunks:
            yield from self._model.scores([(q, d) for q, d in chunk], opts)

    def embed_all(self, texts: str | Iterable[str], outputs: Sequence[str], **options: Any) -> Iterator[dict[str, Any]]:
        """Several outputs of each text from one pass of a model that computes them
        together (`outputs`: capability names such as `dense_text`, `sparse_text`,
        `multi_vector_text`): one dict per text, keyed by capability."""
        wanted = list(outputs)
        opts, chunks = self._calls(_texts(texts), options)
        for chunk in chunks:
            dense, sparse, multi = self._model.outputs(chunk, wanted, opts)
            for i in range(len(chunk)):
                row: dict[str, Any] = {}
                if dense is not None:
                    row["dense_text"] = dense[i]
                if sparse is not None:
                    indices, values = sparse[i]
                    row["sparse_text"] = SparseEmbedding(values=values, indices=indices)
                if multi is not None:
                    row["multi_vector_text"] = multi[i]
                yield row


__all__ = [
    "BgeM3Embedding", "EmbeddingModel", "EmbedkitError", "ImageEmbedding", "LateInteractionMultimodalEmbedding",
    "LateInteractionTextEmbedding", "SparseEmbedding", "SparseTextEmbedding",
    "TextCrossEncoder", "TextEmbedding",
]

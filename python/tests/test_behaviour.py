"""How the package behaves beyond its numbers: errors, laziness, memory, the GIL, Ctrl-C."""

import itertools
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import embedkit
from conftest import model_dir

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def minilm():
    return embedkit.TextEmbedding(MINILM, specific_model_path=model_dir("setup", "all-MiniLM-L6-v2-int8"))


def test_errors_are_value_errors_of_their_kind_with_the_engines_message(tmp_path):
    for kind in (embedkit.UnknownModelError, embedkit.DownloadError, embedkit.InvalidInputError,
                 embedkit.ModelMismatchError):
        assert issubclass(kind, embedkit.EmbedkitError)
    assert issubclass(embedkit.EmbedkitError, ValueError)
    with pytest.raises(embedkit.UnknownModelError, match="not supported.*bge-small-en-v1.5"):
        embedkit.TextEmbedding("BAAI/bge-smal-en-v1.5", local_files_only=True, cache_dir=str(tmp_path))
    with pytest.raises(embedkit.DownloadError, match="not in the cache"):
        embedkit.TextEmbedding(MINILM, local_files_only=True, cache_dir=str(tmp_path))
    with pytest.raises(embedkit.ModelMismatchError, match="missing|not found"):
        embedkit.TextEmbedding(MINILM, specific_model_path=str(tmp_path))
    with pytest.raises(embedkit.InvalidInputError, match="batch_size must be at least 1"):
        embedkit.TextEmbedding(MINILM, specific_model_path=model_dir("setup", "all-MiniLM-L6-v2-int8"),
                               batch_size=0)
    with pytest.raises(embedkit.InvalidInputError, match="threads must be at least 1"):
        embedkit.TextEmbedding(MINILM, specific_model_path=model_dir("setup", "all-MiniLM-L6-v2-int8"),
                               threads=0)
    images = embedkit.ImageEmbedding("Qdrant/clip-ViT-B-32-vision",
                                     specific_model_path=model_dir("tiny", "vision-clip-512"))
    with pytest.raises(TypeError, match="unsupported image input float"):
        list(images.embed([3.5]))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    with pytest.raises(embedkit.EmbedkitError, match="broken.jpg"):
        list(images.embed([str(broken)]))


def test_embed_reads_its_input_lazily(minilm):
    consumed = itertools.count()

    def texts():
        for i in range(1_000_000):
            next(consumed)
            yield f"text number {i}"

    it = minilm.embed(texts())
    first = list(itertools.islice(it, 3))
    assert len(first) == 3
    # One chunk was read, not the million.
    assert next(consumed) <= embedkit._core.TEXT_CHUNK + 1


def _child_peak_mb(count: int) -> float:
    """Streams `count` items through a static model in a fresh interpreter and returns
    its peak RSS in MB: a figure the other tests of this process cannot move."""
    script = textwrap.dedent(f"""
        import resource
        import embedkit
        model = embedkit.TextEmbedding("minishlab/potion-base-8M", specific_model_path={model_dir("tiny", "static-256")!r})
        n = 0
        for v in model.embed(f"item {{i}} of a long stream" for i in range({count})):
            n += 1
        assert n == {count}, n
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.split()[-1]) / 1024


def test_a_million_items_stream_in_constant_memory():
    grown_mb = _child_peak_mb(1_000_000) - _child_peak_mb(1)
    # Held at once, the vectors would take 1e6 x 256 x 4 bytes = 1 GB.
    assert grown_mb < 150, f"peak RSS grew by {grown_mb:.0f} MB"


def test_the_gil_is_released_while_embedding(minilm):
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    start = time.perf_counter()
    # One engine call: a single chunk of long texts.
    list(minilm.embed(["a long paragraph about vector search " * 40] * 64))
    elapsed = time.perf_counter() - start
    stop.set()
    t.join()
    during = [x for x in ticks if start <= x <= start + elapsed]
    assert elapsed > 0.2
    assert len(during) > elapsed * 50, "the other thread could not run while the engine worked"


def _thread_stacks(pid: int) -> str:
    """The native stacks of a process's threads (gdb), to say where a hang is."""
    try:
        out = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 12"],
                             capture_output=True, text=True, timeout=60)
        return "\n".join(l for l in out.stdout.splitlines() if l.startswith(("#", "Thread")))
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"(no stacks: {e})"


def test_ctrl_c_interrupts_a_long_embed():
    # "ready" comes after the first vector, so the interrupt lands while vectors stream,
    # not while the sessions are still being created. The child sets Python's Ctrl-C
    # handler itself: a process started in the background by a non-interactive shell
    # (`make test &`, some CI runners) inherits SIGINT ignored, and Python then installs
    # none, so the signal would be dropped before reaching embedkit at all.
    script = textwrap.dedent(f"""
        import itertools, signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import embedkit
        m = embedkit.TextEmbedding({MINILM!r}, specific_model_path={model_dir("setup", "all-MiniLM-L6-v2-int8")!r})
        vectors = m.embed("an endless stream of text" for _ in itertools.count())
        next(vectors)
        print("ready", flush=True)
        try:
            for _ in vectors:
                pass
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        stacks = _thread_stacks(proc.pid)
        proc.kill()
        raise AssertionError(f"no exit 60 s after Ctrl-C; the threads:\n{stacks}")
    assert proc.returncode == 3 and "interrupted" in out
    assert time.perf_counter() - sent < 15


def test_sparse_embedding_helpers():
    e = embedkit.SparseEmbedding.from_dict({5: 0.5, 2: 1.0})
    assert e.as_dict() == {5: 0.5, 2: 1.0}
    assert set(e.as_object()) == {"values", "indices"}
    empty = embedkit.SparseEmbedding.from_dict({})
    assert empty.indices.dtype == np.int64 and len(empty.values) == 0


def test_one_engine_class_with_capabilities_and_per_call_options():
    """Every class is the one capability handle underneath: it says what it computes,
    refuses a model that cannot do its job before loading it, and takes the per-call
    options (Matryoshka `dimensions`, `normalize`, sparse pruning)."""
    nomic = embedkit.TextEmbedding("nomic-ai/nomic-embed-text-v1.5",
                                   specific_model_path=model_dir("tiny", "mean-768"))
    assert nomic.capabilities == ["dense_text", "dense_token_ids", "token_vectors", "tokens"]
    texts = ["first document", "a second, longer document"]
    full = np.stack(list(nomic.embed(texts)))
    short = np.stack(list(nomic.embed(texts, dimensions=64)))
    assert short.shape == (2, 64)
    want = full[:, :64] / np.linalg.norm(full[:, :64], axis=1, keepdims=True)
    assert np.abs(short - want).max() < 1e-5
    unit = np.stack(list(nomic.embed(texts, normalize=True)))
    assert np.abs(unit - full / np.linalg.norm(full, axis=1, keepdims=True)).max() < 1e-5
    with pytest.raises(embedkit.InvalidInputError, match="dimensions"):
        list(nomic.embed(texts, dimensions=0))
    # Output types, the last step, against numpy's own rounding and packbits.
    q = np.stack(list(nomic.embed(texts, dimensions=64, output_dtype="int8")))
    assert q.dtype == np.int8 and q.shape == (2, 64)
    scaled = np.round(short * (127.0 / np.abs(short).max(axis=1, keepdims=True)))
    assert np.abs(q.astype(np.int32) - scaled).max() <= 1
    bits = np.stack(list(nomic.embed(texts, output_dtype="binary")))
    assert bits.dtype == np.uint8 and bits.shape == (2, 96)
    assert (bits == np.packbits(full > 0, axis=1)).all()
    with pytest.raises(embedkit.InvalidInputError, match="int4"):
        list(nomic.embed(texts, output_dtype="int4"))

    minilm = embedkit.TextEmbedding(MINILM, specific_model_path=model_dir("setup", "all-MiniLM-L6-v2-int8"))
    with pytest.raises(embedkit.InvalidInputError, match="Matryoshka"):
        list(minilm.embed(texts, dimensions=64))
    # Truncation off: texts that fit are unchanged, an over-long one raises by position.
    assert np.array_equal(np.stack(list(minilm.embed(texts, truncate=False))),
                          np.stack(list(minilm.embed(texts))))
    with pytest.raises(embedkit.InvalidInputError, match="input 1 is longer than the model takes"):
        list(minilm.embed([texts[0], "word " * 2000], truncate=False))

    # A model of another kind is refused by what it offers, not loaded.
    with pytest.raises(embedkit.UnsupportedError, match="sparse_text.*not dense_text"):
        embedkit.TextEmbedding("Qdrant/bm25", specific_model_path=model_dir("tiny", "bm25"))

    # A keyword argument the model's kind does not read is refused (fastembed drops it).
    with pytest.raises(embedkit.InvalidInputError, match="alpha"):
        embedkit.SparseTextEmbedding("Qdrant/bm25", specific_model_path=model_dir("tiny", "bm25"), alpha=0.8)

    bm25 = embedkit.SparseTextEmbedding("Qdrant/bm25", specific_model_path=model_dir("tiny", "bm25"))
    doc = ["the quick brown fox jumps over the lazy dog near the river bank"]
    whole = next(iter(bm25.embed(doc)))
    top = next(iter(bm25.embed(doc, top_k=3)))
    order = np.argsort(-whole.values, kind="stable")[:3]
    assert sorted(top.indices.tolist()) == top.indices.tolist() == sorted(whole.indices[order].tolist())

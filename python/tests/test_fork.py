"""embedkit as production Python uses it: in processes made by fork() after the model was
used (multiprocessing's default on Linux, gunicorn --preload, celery's prefork pool), in
spawn/forkserver pools, from several threads at once, and under asyncio. Every scenario
compares with the vectors the parent computed, and runs in a subprocess with a deadline:
a hang is a failure with a message, never a stuck test run."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import DATA, REPO, model_dir

DEADLINE_S = 180

# Each family's model, and what one call computes, as code run in the scenario scripts.
FAMILIES = {
    "dense": ("embedkit.TextEmbedding('sentence-transformers/all-MiniLM-L6-v2', specific_model_path={p!r})",
              ("setup", "all-MiniLM-L6-v2-int8"), "list(model.embed(TEXTS))"),
    "sparse": ("embedkit.SparseTextEmbedding('prithivida/Splade_PP_en_v1', specific_model_path={p!r})",
               ("shared", "splade-tiny"), "[np.concatenate([e.indices, e.values]) for e in model.embed(TEXTS)]"),
    "late": ("embedkit.LateInteractionTextEmbedding('colbert-ir/colbertv2.0', specific_model_path={p!r})",
             ("tiny", "colbert-128"), "list(model.embed(TEXTS))"),
    "rerank": ("embedkit.TextCrossEncoder('Xenova/ms-marco-MiniLM-L-6-v2', specific_model_path={p!r})",
               ("tiny", "rerank-bert"), "[np.array(list(model.rerank('a question', TEXTS)))]"),
    "image": ("embedkit.ImageEmbedding('Qdrant/clip-ViT-B-32-vision', specific_model_path={p!r})",
              ("tiny", "vision-clip-512"), "list(model.embed(IMAGES))"),
}


def prelude(family: str) -> str:
    load, where, compute = FAMILIES[family]
    texts = (DATA / "corpus.txt").read_text(encoding="utf-8").splitlines()[:20]
    images = sorted(str(p) for p in (DATA / "images").iterdir())
    return textwrap.dedent(f"""
        import os, pickle, sys
        import numpy as np
        import embedkit
        TEXTS = {texts!r}
        IMAGES = {images!r}
        def make():
            return {load.format(p=model_dir(*where))}
        def compute(model):
            return [np.asarray(x) for x in {compute}]
    """)


def run_script(body: str, family: str = "dense") -> dict:
    """Runs `body` after the family's prelude in a fresh interpreter, which must print one
    JSON object last; a deadline turns a hang into a failure."""
    script = prelude(family) + textwrap.dedent(body)
    try:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=DEADLINE_S, cwd=str(REPO))
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{family}: hung for {DEADLINE_S} s (stderr: {(e.stderr or '')[-2000:]})", pytrace=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# The parent computes, forks, and the child computes again; the child's results come back
# through a pipe. The parent waits for the child against a deadline of its own.
FORK_AFTER_USE = """
    import json
    model = make()
    before = compute(model)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            data = pickle.dumps(compute(model))
            os.write(write, len(data).to_bytes(8, "little") + data)
            os._exit(0)
        except BaseException as e:
            os.write(write, (0).to_bytes(8, "little"))
            print("child failed:", repr(e), file=sys.stderr)
            os._exit(1)
    os.close(write)
    import select, time
    deadline = time.time() + 120
    chunks = b""
    while time.time() < deadline:
        ready, _, _ = select.select([read], [], [], 1.0)
        if ready:
            chunk = os.read(read, 1 << 20)
            if not chunk:
                break
            chunks += chunk
    else:
        os.kill(pid, 9)
        print('{"hung": true}')
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    after = pickle.loads(chunks[8:]) if len(chunks) > 8 else None
    ok = after is not None and len(after) == len(before) and all(
        a.shape == b.shape and np.abs(a.astype(np.float64) - b).max(initial=0) <= 1e-6
        for a, b in zip(after, before))
    # The parent still works after the fork, too.
    again = compute(model)
    parent_ok = all(np.abs(a.astype(np.float64) - b).max(initial=0) <= 1e-6 for a, b in zip(again, before))
    print(json.dumps({"hung": False, "status": status, "same": ok, "parent_same": parent_ok}))
"""


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_forked_child_embeds_after_the_parent_did(family):
    result = run_script(FORK_AFTER_USE, family)
    assert not result["hung"], f"{family}: the forked child hung"
    assert result["status"] == 0 and result["same"], result
    assert result["parent_same"], result


POOL = """
    import json, multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    MODEL = None
    def init():
        global MODEL
        if MODEL is None:
            MODEL = make()
    def one(i):
        init()
        return np.asarray(list(MODEL.embed([TEXTS[i]]))[0])
    if __name__ == "__main__":
        method = sys.argv[1] if len(sys.argv) > 1 else "{method}"
        MODEL = make()
        before = compute(MODEL)
        ctx = mp.get_context(method)
        with ctx.Pool(2, initializer=init) as pool:
            by_pool = pool.map(one, range(len(TEXTS)), chunksize=3)
        with ProcessPoolExecutor(2, mp_context=ctx, initializer=init) as ex:
            by_executor = list(ex.map(one, range(len(TEXTS))))
        same = lambda got: len(got) == len(before) and all(
            np.abs(a - b).max() <= 1e-5 for a, b in zip(got, before))
        print(json.dumps({{"pool": same(by_pool), "executor": same(by_executor)}}))
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_process_pools_give_the_parents_vectors(method, tmp_path):
    # Pools of spawn and forkserver import the main module again: a file, not -c.
    script = tmp_path / "pool_job.py"
    script.write_text(prelude("dense") + textwrap.dedent(POOL.format(method=method)), encoding="utf-8")
    try:
        out = subprocess.run([sys.executable, str(script), method], capture_output=True, text=True,
                             timeout=DEADLINE_S, cwd=str(tmp_path))
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{method} pool hung for {DEADLINE_S} s: {(e.stderr or '')[-2000:]}", pytrace=False)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"pool": True, "executor": True}, result


APP = """
    import json
    model = make()
    # Used before the workers are forked, as a preloaded app warms up.
    WARM = compute(model)
    def app(environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        texts = json.loads(environ["wsgi.input"].read(size))
        vectors = [v.tolist() for v in model.embed(texts)]
        body = json.dumps({"pid": os.getpid(), "vectors": vectors}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_preloaded_workers_embed_concurrent_requests(tmp_path):
    (tmp_path / "embed_app.py").write_text(prelude("dense") + textwrap.dedent(APP), encoding="utf-8")
    port = free_port()
    gunicorn = [sys.executable, "-m", "gunicorn", "--preload", "-w", "2", "-b", f"127.0.0.1:{port}",
                "--timeout", "120", "--graceful-timeout", "5", "embed_app:app"]
    server = subprocess.Popen(gunicorn, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()[-3000:]
                time.sleep(0.2)
        texts = (DATA / "corpus.txt").read_text(encoding="utf-8").splitlines()[:20]

        def ask(text):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=json.dumps([text]).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=120) as resp:
                answer = json.loads(resp.read())
            return answer["pid"], np.asarray(answer["vectors"][0], dtype=np.float32)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, texts * 2))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    import embedkit

    model = embedkit.TextEmbedding("sentence-transformers/all-MiniLM-L6-v2",
                                   specific_model_path=model_dir("setup", "all-MiniLM-L6-v2-int8"))
    want = list(model.embed(texts * 2))
    assert len({pid for pid, _ in answers}) == 2, "both workers answered"
    for (_, got), w in zip(answers, want):
        assert np.abs(got - w).max() <= 1e-5


def test_threads_embedding_at_once_give_the_single_threaded_vectors():
    import embedkit

    model = embedkit.TextEmbedding("sentence-transformers/all-MiniLM-L6-v2",
                                   specific_model_path=model_dir("setup", "all-MiniLM-L6-v2-int8"))
    texts = (DATA / "corpus.txt").read_text(encoding="utf-8").splitlines()[:40]
    alone = np.stack(list(model.embed(texts)))
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda rot: np.stack(list(model.embed(texts[rot:] + texts[:rot]))), range(8)))
    for rot, got in enumerate(together):
        assert np.abs(np.roll(got, rot, axis=0) - alone).max() <= 1e-6


def test_asyncio_to_thread_leaves_the_event_loop_running():
    import asyncio

    import embedkit

    model = embedkit.TextEmbedding("sentence-transformers/all-MiniLM-L6-v2",
                                   specific_model_path=model_dir("setup", "all-MiniLM-L6-v2-int8"))
    texts = (DATA / "corpus.txt").read_text(encoding="utf-8").splitlines()[:400]

    async def main():
        ticks = 0
        done = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        started = time.perf_counter()
        vectors = await asyncio.to_thread(lambda: list(model.embed(texts)))
        elapsed = time.perf_counter() - started
        done.set()
        await tick_task
        return vectors, ticks, elapsed

    vectors, ticks, elapsed = asyncio.run(main())
    assert len(vectors) == len(texts)
    # The loop ticked all along (every 10 ms, allowing for a busy machine), not once at the end.
    assert ticks >= max(5, int(elapsed / 0.01 * 0.25)), (ticks, elapsed)

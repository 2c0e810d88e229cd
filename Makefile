# cxloop — the two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_FILES := $(shell find protos -name '*.proto' | sort)
BUF_VERSION := 1.75.0
BUF := .cxloop/tools/node_modules/.bin/buf

.PHONY: help venv run test test-unit test-integration test-e2e lint typecheck protos protos-check buf-lint bench clean

help:
	@echo "make run     start the whole suite on embedded defaults (NATS + SQLite under ./.cxloop/)"
	@echo "make test    lint, proto freshness, unit, integration and e2e tests"
	@echo "make bench   benchmarks; writes bench/results/*.json and bench/README.md"
	@echo "make protos  regenerate libs/gen and docs/api from protos/"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e '.[dev]'
	@# libs/, libs/gen and services/ are import roots (docs/adr/0002-monorepo-layout.md)
	@site=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
	  printf '%s\n' "$(CURDIR)/libs" "$(CURDIR)/libs/gen" "$(CURDIR)/services" > "$$site/cxloop-paths.pth"
	@touch $(STAMP)

run: venv
	$(BIN)/cxloop up

protos: venv
	rm -rf libs/gen/cxloop
	mkdir -p libs/gen
	$(BIN)/python -m grpc_tools.protoc -Iprotos \
	  --python_out=libs/gen --pyi_out=libs/gen --grpc_python_out=libs/gen $(PROTO_FILES)
	$(BIN)/python -m cxloop_libs.apidoc protos docs/api

# CI proves the committed generated code is current.
protos-check: protos
	@git diff --exit-code --stat -- libs/gen docs/api || (echo "libs/gen or docs/api is stale: run 'make protos' and commit both" && exit 1)
	@test -z "$$(git status --porcelain -- libs/gen docs/api)" || (git status --porcelain -- libs/gen docs/api; echo "untracked generated files: run 'make protos' and commit"; exit 1)

$(BUF):
	mkdir -p .cxloop/tools
	npm install --silent --no-audit --no-fund --prefix .cxloop/tools @bufbuild/buf@$(BUF_VERSION)

buf-lint: $(BUF)
	cd protos && ../$(BUF) lint

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check libs services tests bench

typecheck: venv
	$(BIN)/mypy libs/cxloop_libs $(wildcard services/*/domain)

test-unit: venv
	$(BIN)/pytest -q -m "not integration and not e2e"

test-integration: venv
	$(BIN)/pytest -q -m "integration and not e2e"

test-e2e: venv
	$(BIN)/pytest -q -m e2e

test: venv lint typecheck protos-check buf-lint
	$(BIN)/pytest -q

bench: venv
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/pip install -q --no-deps recbole  # ships ml-100k.inter for bench/personalization.py (torch not needed)
	$(BIN)/python -m bench.run

clean:
	rm -rf .cxloop/run .pytest_cache

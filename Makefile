# cxloop — the two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_FILES := $(shell find protos -name '*.proto' | sort)
BUF_VERSION := 1.75.0
BUF := .cxloop/tools/node_modules/.bin/buf

.PHONY: help venv run test test-unit test-integration test-e2e lint typecheck protos protos-check buf-lint bench clean deploy-check deploy-tools lock fuzz sdk-tools

help:
	@echo "make run     start the whole suite on embedded defaults (NATS + SQLite under ./.cxloop/)"
	@echo "make test    lint, proto freshness, unit, integration and e2e tests"
	@echo "make bench   benchmarks; writes bench/results/*.json and bench/README.md"
	@echo "make protos  regenerate libs/gen and docs/api from protos/"
	@echo "make deploy-check  validate deploy/ and boot the suite in production mode (part of make test)"

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

# Segment's JavaScript SDKs and Playwright (driving Debian's chromium) for the
# gateway's SDK compatibility tests (tests/hostile); chromium comes from apt
# when missing and we are root, else the browser test skips and says why.
SDK_TOOLS := .cxloop/tools/node_modules/@segment/analytics-node/package.json
CONSOLE_TOOLS := .cxloop/tools/node_modules/axe-core/package.json
sdk-tools: $(SDK_TOOLS) $(CONSOLE_TOOLS)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "chromium not installed: the browser SDK test will skip"; }
	@# A Hangul font, so the console's Korean text renders in Chromium's screenshots.
	@fc-list 2>/dev/null | grep -qi nanum || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-nanum >/dev/null || \
	  echo "fonts-nanum not installed: Korean text shows as boxes in console screenshots"; }

$(SDK_TOOLS):
	mkdir -p .cxloop/tools
	npm install --silent --no-audit --no-fund --prefix .cxloop/tools \
	  @segment/analytics-node@3 @segment/analytics-next@1 playwright-core@1

# axe-core: the console's browser tests check accessibility with it (issue 17).
$(CONSOLE_TOOLS):
	mkdir -p .cxloop/tools
	npm install --silent --no-audit --no-fund --prefix .cxloop/tools axe-core@4

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

# Tests wait on NATS, PostgreSQL and subprocesses most of the time: pytest-xdist
# runs them on TEST_WORKERS processes, each with its own nats-server
# (cxloop_testing.infra); a module's (or a class's) tests stay on one worker,
# so a module-scoped fixture such as the whole suite as subprocesses is set
# up once (docs/adr/0250). TEST_WORKERS=0 runs them in pytest's own process.
TEST_WORKERS ?= 3
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadscope

test: venv lint typecheck protos-check buf-lint deploy-check sdk-tools
	$(BIN)/pytest -q $(PYTEST_PARALLEL) --durations=25 --ignore=tests/production --ignore=tests/deploy

bench: venv
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/pip install -q --no-deps recbole  # ships ml-100k.inter for bench/personalization.py (torch not needed)
	$(BIN)/python -m bench.run

clean:
	rm -rf .cxloop/run .pytest_cache

# -- deploy files: validated without a cluster or a Docker engine ---------------
# kubectl (kustomize), kubernetes-validate, check-jsonschema and hadolint come
# as wheels (the dev and deploy extras); promtool from Debian's prometheus
# package, unpacked under .cxloop/tools (nothing is started or installed
# system-wide). tests/production (production boot, secret names) and
# tests/deploy (Kubernetes policy, runbook metric names) run here.
K8S_VERSION := 1.34.0
DEPLOY_STAMP := $(VENV)/.deploy-installed
PROMTOOL := .cxloop/tools/prometheus/usr/bin/promtool
RENDERED := .cxloop/deploy

$(DEPLOY_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install -q -e '.[dev,deploy]'
	@touch $@

$(PROMTOOL):
	@mkdir -p .cxloop/tools/deb
	@cd .cxloop/tools/deb && { apt-get download prometheus >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 && apt-get download prometheus >/dev/null 2>&1; }; } || true
	@deb=$$(ls .cxloop/tools/deb/prometheus_*.deb 2>/dev/null | head -1); \
	  if [ -n "$$deb" ]; then dpkg-deb -x "$$deb" .cxloop/tools/prometheus; fi

deploy-tools: $(DEPLOY_STAMP)
	@$(MAKE) --no-print-directory $(PROMTOOL) || true

deploy-check: deploy-tools
	@mkdir -p $(RENDERED)
	@for o in deploy/k8s/overlays/*/; do n=$$(basename $$o); \
	  echo "kustomize + kubernetes-validate (strict, $(K8S_VERSION)): $$o"; \
	  $(BIN)/kubectl kustomize $$o > $(RENDERED)/$$n.yaml || exit 1; \
	  $(BIN)/kubernetes-validate --strict --quiet -k $(K8S_VERSION) $(RENDERED)/$$n.yaml || exit 1; \
	done
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose/docker-compose*.yml
	$(BIN)/hadolint deploy/compose/Dockerfile
	@if [ -x $(PROMTOOL) ]; then \
	  $(PROMTOOL) check rules deploy/observability/prometheus/alerts.yml && \
	  (cd deploy/observability/prometheus && ../../../$(PROMTOOL) test rules alerts.test.yml); \
	else \
	  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	  echo "!! promtool SKIPPED: Debian's prometheus package could not be fetched here  !!"; \
	  echo "!! (apt-get download prometheus failed; as root, apt-get update is tried)   !!"; \
	  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	fi
	$(BIN)/pytest -q tests/production tests/deploy

# The image's dependency lock (deploy/compose/requirements.lock, hashes
# checked at build): regenerate after changing [project] dependencies.
lock: venv
	$(BIN)/pip install -q pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	  --no-emit-index-url --no-emit-find-links -o deploy/compose/requirements.lock pyproject.toml
# Schemathesis against the real gateway with a large budget (make test runs a small one).
fuzz: venv
	CXLOOP_FUZZ_MAX_EXAMPLES=$${CXLOOP_FUZZ_MAX_EXAMPLES:-300} CXLOOP_FUZZ_TIMEOUT_S=3600 \
	  $(BIN)/pytest -q tests/hostile/test_openapi_fuzz.py

# Train the feedback service's sentiment models once, ahead of its first start
# (ADR 0150): a deterministic build from services/feedback/data into the
# cache the service reads (CXLOOP_FEEDBACK_MODEL_CACHE_DIR, default
# .cxloop/models; not committed). Training on all rows takes minutes.
.PHONY: sentiment-model
sentiment-model: venv
	$(BIN)/python -m feedback.adapters.sentiment_model \
	  --cache-dir $${CXLOOP_FEEDBACK_MODEL_CACHE_DIR:-.cxloop/models} \
	  --limit $${CXLOOP_FEEDBACK_SENTIMENT_TRAIN_LIMIT:-0}

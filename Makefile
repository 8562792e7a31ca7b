# The two commands of the README: `make run` and `make test`. Everything else
# here is what they are made of.
# Python 3.11 by that name where it exists, else whatever python3 is (setup.cfg checks the version).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# Python writes its bytecode caches even where the environment says not to: without them
# every process (each pytest worker, each `villagelink` a test starts, each gunicorn
# worker) compiled the whole tree and pytest rewrote every test module's asserts again,
# about 6 s of CPU per pytest worker before its first test.
unexport PYTHONDONTWRITEBYTECODE
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat setup.cfg pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test test-fast install services fetch-services lint bench fuzz clean-var help \
	console node-check browser-deps

help:
	@echo "make run    - build the console, start the embedded servers, migrate, seed the demo region, serve :8000"
	@echo "make test   - install what the tests need and run the whole suite"
	@echo "make test-fast - the tests that need no Keycloak, MinIO, browser or worker process"
	@echo "make services - a real Keycloak and MinIO on loopback (see docs/identity.md, docs/storage.md)"
	@echo "make lint   - ruff check, ruff format --check, mypy (settings in pyproject.toml), schema lint"
	@echo "make fuzz   - a long fuzz run with fresh randomness (FUZZ_DOCUMENTS, default 20000)"
	@echo "make bench  - benchmarks against a running 'make run' (see bench/README.md)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstalls whenever setup.cfg or pyproject.toml change (the stamp carries their checksum).
$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

run: install console
	$(BIN)/villagelink run

# Node.js 20 or later builds the console (and runs the HTTP audit); say so plainly when it
# is missing rather than fail inside npm.
node-check:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
		echo "需要 Node.js 20 或更高版本（含 npm）来构建控制台：请先安装 Node.js。"; \
		echo "Node.js 20 or later (with npm) is needed to build the console: install it first."; \
		exit 1; }
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { \
		echo "Node.js 版本过低（$$(node --version)），需要 20 或更高版本。"; \
		echo "Node.js $$(node --version) is too old: version 20 or later is needed."; \
		exit 1; }

# The console (console/, Vue + Vite): `npm ci` when its lockfile changes, `vite build` when
# the lockfile or any source changes. The build's stamp carries a checksum of all of them and
# lives in dist/, which a build empties: a stale or half-made build has no stamp.
CONSOLE := console
CONSOLE_SOURCES_SUM := $(shell find $(CONSOLE) \( -name node_modules -o -name dist \) -prune \
	-o -type f -print 2>/dev/null | LC_ALL=C sort | xargs cat 2>/dev/null | cksum | cut -d' ' -f1)
CONSOLE_STAMP := $(CONSOLE)/dist/.built-$(CONSOLE_SOURCES_SUM)

$(CONSOLE)/node_modules/.package-lock.json: $(CONSOLE)/package.json $(CONSOLE)/package-lock.json | node-check
	cd $(CONSOLE) && npm ci --no-audit --no-fund

$(CONSOLE_STAMP): $(CONSOLE)/node_modules/.package-lock.json | node-check
	cd $(CONSOLE) && npx vite build
	touch $@

console: $(CONSOLE_STAMP)

# The browser tests drive Debian's Chromium with CJK fonts (Playwright's own browser download
# cannot work here), and the gateway and jobs under test go through Debian's PgBouncer. CI
# runs as root on a clean machine: install them there; elsewhere say how.
CHROMIUM := /usr/bin/chromium
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
PGBOUNCER := /usr/sbin/pgbouncer
browser-deps:
	@if [ ! -x $(CHROMIUM) ] || [ ! -e $(CJK_FONT) ] || [ ! -x $(PGBOUNCER) ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y --no-install-recommends chromium fonts-noto-cjk pgbouncer; \
		else \
			echo "测试需要 Chromium、中文字体和 PgBouncer / the tests need Chromium, CJK fonts and PgBouncer:"; \
			echo "  sudo apt-get install chromium fonts-noto-cjk pgbouncer"; \
			exit 1; \
		fi; \
	fi

# Keycloak, MinIO and Helm are fetched (once, into ~/.cache/villagelink) before the
# suite starts, so that no test's time limit has to cover a download or a build.
fetch-services: install
	$(BIN)/villagelink services --fetch-only

services: install
	$(BIN)/villagelink services

# The GraphQL-over-HTTP audit (tests/test_http_audit.py) runs graphql-http under Node; npm ci
# reinstalls it whenever the committed lockfile changes.
AUDIT := tests/http_audit
$(AUDIT)/node_modules/.package-lock.json: $(AUDIT)/package.json $(AUDIT)/package-lock.json | node-check
	cd $(AUDIT) && npm ci --no-audit --no-fund

# The TypeScript client example (tests/test_client_examples.py builds and runs it) alike.
EXAMPLE_TS := examples/typescript
$(EXAMPLE_TS)/node_modules/.package-lock.json: $(EXAMPLE_TS)/package.json $(EXAMPLE_TS)/package-lock.json | node-check
	cd $(EXAMPLE_TS) && npm ci --no-audit --no-fund

# xdist workers, each with its own embedded PostgreSQL and Valkey: one per core for
# `make test-fast` (its tests keep the cores busy: a third worker on two cores measured
# slower), one more than the cores for `make test`, whose Keycloak, browser and process
# tests spend much of their time waiting on other processes (two cores: 456 s with three
# workers, 498 s with two). A test file runs on one worker, so test_keycloak.py starts one
# Keycloak, and tests/browser/ goes whole to one worker, so one stack and one Chromium
# serve it. (--dist loadgroup would be finer, but pytest 9.2 ignores the group names xdist
# 3.8 appends to test ids.) Files go out in the order tests/conftest.py puts them
# (fan-outs over every village first, then Keycloak, worker processes and the slow).
# PYTEST_XDIST= runs in one process. pytest exits 5 when it collected no test, which
# fails the target like any failure.
PYTEST_WORKERS ?= auto
test: PYTEST_WORKERS = $(shell echo $$(( $$(nproc) + 1 )))
PYTEST_XDIST ?= -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder
FAST_MARKERS := not keycloak and not minio and not helm and not worker_process and not browser

# The code compiled once, in parallel, before the tests (half a second): on a fresh clone
# each pytest worker and every process a test starts compiled it again, side by side (a
# first `make test-fast` took 128 s, and 110 s with the code compiled first).
COMPILE := $(BIN)/python -m compileall -q -j 0 platform graphql tenants jobs storage

# The console's own unit tests (vitest) first: seconds, and a broken screen shows early.
test: install fetch-services $(AUDIT)/node_modules/.package-lock.json $(EXAMPLE_TS)/node_modules/.package-lock.json console browser-deps
	cd $(CONSOLE) && npx vitest run
	$(COMPILE)
	$(BIN)/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

# The GraphQL-over-HTTP audit needs no server beyond the gateway: test-fast runs it too.
test-fast: install $(AUDIT)/node_modules/.package-lock.json
	$(COMPILE)
	$(BIN)/python -m pytest $(PYTEST_XDIST) -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

# The fixed-seed run of tests/test_fuzz.py (2,000 operations) is part of `make test`;
# this one draws FUZZ_DOCUMENTS fresh documents (each sent as every role), unbounded in time.
FUZZ_DOCUMENTS ?= 20000
fuzz: install
	VILLAGELINK_FUZZ_DOCUMENTS=$(FUZZ_DOCUMENTS) VILLAGELINK_FUZZ_RANDOM=1 \
		$(BIN)/python -m pytest tests/test_fuzz.py -o timeout=0 -s

# mypy finds the code under its import names here (see [tool.mypy] in pyproject.toml).
MYPY_TREE := $(VENV)/mypy-path/villagelink

$(MYPY_TREE):
	mkdir -p $@
	for folder in platform tenants graphql jobs storage; do ln -sfn ../../../$$folder $@/$$folder; done

lint: install $(MYPY_TREE)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/villagelink schema lint

# The race against PostGraphile (bench/race/): Node 22 and PostGraphile come from its own
# lockfile (the npm package `node` brings the Node binary; the system's stays as it is).
RACE := bench/race
$(RACE)/node_modules/.package-lock.json: $(RACE)/package.json $(RACE)/package-lock.json | node-check
	cd $(RACE) && npm ci --no-audit --no-fund

bench: install $(RACE)/node_modules/.package-lock.json
	$(BIN)/python bench/race/race.py
	$(BIN)/python bench/gateway_spread.py
	$(BIN)/python bench/residents_list.py
	$(BIN)/python bench/provisioning.py
	$(BIN)/python bench/requests_create.py
	$(BIN)/python bench/onetable_import.py
	$(BIN)/python bench/sensing_ingest.py
	$(BIN)/python bench/alert_latency.py
	$(BIN)/python bench/sync_lag.py
	$(BIN)/python bench/live_fanout.py
	$(BIN)/python bench/region_stats.py

clean-var:
	rm -rf var

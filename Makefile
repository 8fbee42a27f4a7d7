# Cairn: two commands do all the set-up on a fresh machine (Python >= 3.11, Node >= 20, npm).
#   make run    create .venv, install Python and npm dependencies, start Cairn with the fictional demo school
#   make test   every test suite
# Both are quick when nothing changed: installs are redone only when their manifests change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY_STAMP  := $(VENV)/.cairn-installed
NPM_STAMP := pwa/node_modules/.cairn-installed
# A pytest worker per core (pytest-xdist; one more made a fresh-clone CI slower, 22 min against 16, as the
# workers fought for the cores). A test file goes to one worker, so module fixtures (a live server, a
# browser) are built once.
PYTEST_WORKERS ?= auto
PYTEST_FLAGS ?=

.PHONY: run test test-python test-js typecheck vectors-check deps bench lint clean

deps: $(PY_STAMP) $(NPM_STAMP)

$(PY_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Error: Cairn needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

$(NPM_STAMP): pwa/package.json pwa/package-lock.json
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || (echo "Error: Cairn needs Node 20 or newer" >&2; exit 1)
	cd pwa && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: deps
	$(BIN)/cairn version
	$(BIN)/cairn selfcheck
	$(BIN)/cairn serve --demo

test: deps vectors-check test-python test-js typecheck

vectors-check: $(PY_STAMP)
	$(BIN)/python -m tests.vectors.generate --check

test-python: $(PY_STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_FLAGS)

test-js: $(NPM_STAMP)
	cd pwa && npm test --silent

typecheck: $(NPM_STAMP)
	cd pwa && npx --no-install tsc -p jsconfig.json

lint: $(PY_STAMP)
	$(BIN)/ruff check crypto sync server tests bench

bench: deps
	$(BIN)/python -m bench.crypto
	node bench/crypto.mjs
	$(BIN)/python -m bench.fold
	node bench/fold.mjs
	$(BIN)/python -m bench.sync --devices 100 --events 20000 --db sqlite
	$(BIN)/python -m bench.pwa
	$(BIN)/python -m bench.review
	$(BIN)/python -m bench.fuzz

clean:
	rm -rf $(VENV) pwa/node_modules .pytest_cache .hypothesis

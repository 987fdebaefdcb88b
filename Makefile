# imagegate: `make run` serves the default policy over HTTPS on localhost; `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8443
APT_PACKAGES := docker-registry wrk hey

.PHONY: run test pytest lint bench system-deps clean lock

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# Debian packages the tests and benchmarks use (a real OCI registry, load generators).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

run: $(STAMP)
	$(BIN)/imagegate serve --policy policies/default.yaml --dev-cert --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check webhook tests bench
	$(BIN)/ruff format --check webhook tests bench
	$(BIN)/mypy --strict webhook
	$(BIN)/mypy --strict tests/support
	$(BIN)/lint-imports
	$(BIN)/pylint webhook
	$(BIN)/imagegate lint policies/*.yaml policies/examples/*.yaml policies/tests/*.test.yaml
	$(BIN)/imagegate lint --root deploy/base deploy/base/policy.yaml deploy/base/quarantine/quarantine.yaml
	$(BIN)/imagegate test policies/tests

pytest: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider

test: lint pytest

bench: $(STAMP) system-deps
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m bench --out bench/results.json --png bench/latency.png

# The image's hash-locked dependencies (deploy/Containerfile installs them with --require-hashes), for
# the Python the image runs (Debian 12's 3.11.2, Linux): runtime from pyproject's dependencies, build from
# its build-system requirements. tests/shipped/deploy checks the locks against pyproject and installs them.
LOCK := $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11.2 --python-platform linux \
	--custom-compile-command "make lock"
lock: $(STAMP)
	$(LOCK) pyproject.toml -o deploy/requirements.txt
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | $(LOCK) - -o deploy/build-requirements.txt

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache

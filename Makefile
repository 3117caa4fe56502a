# The two commands of the README: `make run` and `make test`. Each installs what it needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA_DIR ?= $(CURDIR)/data
LISTEN ?= 127.0.0.1:8181
APT_PACKAGES := zookeeper python3 python3-venv

.PHONY: run test lint typecheck unit system-deps venv clean

# System packages (Debian), only when root and only what is missing.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "warning: missing Debian packages (run as root to install):$$missing"; fi; \
	fi

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip >/dev/null
	$(PIP) install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports

typecheck: venv
	$(VENV)/bin/mypy

test: system-deps venv lint typecheck
	$(VENV)/bin/pytest -q tests

run: system-deps venv
	$(VENV)/bin/midonet up --data-dir $(DATA_DIR) --listen $(LISTEN)

clean:
	rm -rf $(VENV) build *.egg-info

# The two commands of the README: `make run` and `make test`. Each installs what it needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA_DIR ?= $(CURDIR)/data
LISTEN ?= 127.0.0.1:8181
APT_PACKAGES := zookeeper python3 python3-venv clang llvm libbpf-dev bpftool iproute2 iputils-ping
BPF_SRC := src/midonet/datapath/linux/bpf/dp.c
BPF_OBJ := build/bpf/dp.o

.PHONY: run test lint typecheck unit system-deps venv clean bpf

# System packages (Debian), only when root and only what is missing.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "warning: missing Debian packages (run as root to install):$$missing"; fi; \
	fi

# The venv's interpreter is Debian's python3 when there is one (system-deps installs it): Debian builds it with
# profile-guided and link-time optimisation, linked statically. The python3 first on PATH may be another build
# (this kind of machine puts pyenv's 3.11 there, a shared library without either), on which the agent spends about
# 10% more CPU a new flow (docs/benchmarks.md, "New flows, session 5"). Without Debian's (or its venv module, when
# system-deps could not install python3-venv: not root), the python3 on PATH.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || { [ -x /usr/bin/python3 ] && /usr/bin/python3 -m venv $(VENV); } || { rm -rf $(VENV); python3 -m venv $(VENV); }
	$(PIP) install -q --upgrade pip >/dev/null
	$(PIP) install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# The Linux datapath's tc-BPF program (without clang the Linux datapath tests skip, saying so).
bpf: system-deps
	@if command -v clang >/dev/null; then \
	  if [ ! -f $(BPF_OBJ) ] || [ $(BPF_SRC) -nt $(BPF_OBJ) ]; then \
	    mkdir -p $(dir $(BPF_OBJ)) && \
	    clang -O2 -g -Wall -target bpf -I/usr/include/$$(uname -m)-linux-gnu -c $(BPF_SRC) -o $(BPF_OBJ) && \
	    echo "built $(BPF_OBJ)"; \
	  fi; \
	else echo "warning: clang is missing: $(BPF_OBJ) not built"; fi

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports

typecheck: venv
	$(VENV)/bin/mypy

test: system-deps venv lint typecheck bpf
	$(VENV)/bin/pytest -q tests

run: system-deps venv bpf
	$(VENV)/bin/midonet up --data-dir $(DATA_DIR) --listen $(LISTEN)

clean:
	rm -rf $(VENV) build *.egg-info

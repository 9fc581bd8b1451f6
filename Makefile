# Set-up and checks for django-signal-monitor. `make run` serves the demo; `make test` runs everything.
# Python >= 3.12 is found automatically (PATH, then pyenv); override with `make PYTHON=/path/python3.12`.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
VENV52 ?= .venv52
DJANGO52 ?= Django==5.2.19
HTMX_VERSION ?= 4.0.1
HTMX_DIR := static/signals_dashboard/vendor/htmx
HTMX_SKILLS_DIR ?=
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_RATE ?= 20
PYTEST_ARGS ?=
BENCH_ARGS ?=

export PYTHON

# pytest exit 5 means "no tests collected": say so and succeed (CI reports it as running no test).
# The suite keeps one test database: a SIGNAL_MONITOR_SQLITE_PATH exported in the shell (the
# monitor's own file, config/settings.py) must not reach it.
define run_pytest
	env -u SIGNAL_MONITOR_SQLITE_PATH -u SIGNAL_MONITOR_SQLITE_TEST_PATH \
	$(1)/bin/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make: pytest collected no tests (exit 5)"; exit 0; fi; exit $$rc
endef

.PHONY: help venv venv52 run test test-61 test-52 system bench bench-quick lint vendor-htmx clean distclean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

venv: $(VENV)/.requirements.stamp $(VENV)/.speedups.stamp  ## create .venv (Python >= 3.12) with requirements.txt installed

# The optional C accelerator of the capture plans (collector/_speedups.c), built in place for the
# venv's interpreter; .venv52 uses the same interpreter, so the same build. Without a compiler the
# script says so and the collector's pure-Python plans are used.
$(VENV)/.speedups.stamp: collector/_speedups.c collector/speedups_build.py scripts/build_speedups.sh $(VENV)/.requirements.stamp
	@scripts/build_speedups.sh $(VENV)/bin/python
	@touch $@

$(VENV52)/.speedups.stamp: collector/_speedups.c collector/speedups_build.py scripts/build_speedups.sh $(VENV52)/.requirements.stamp
	@scripts/build_speedups.sh $(VENV52)/bin/python
	@touch $@

$(VENV)/.requirements.stamp: requirements.txt scripts/make_venv.sh
	@scripts/make_venv.sh $(VENV) requirements.txt
	@touch $@

venv52: $(VENV52)/.requirements.stamp $(VENV52)/.speedups.stamp  ## create .venv52: the same requirements with Django 5.2 LTS

$(VENV52)/.requirements.stamp: requirements.txt scripts/make_venv.sh
	@scripts/make_venv.sh $(VENV52) requirements.txt $(DJANGO52)
	@touch $@

run: venv  ## migrate, create the demo staff user, serve on 127.0.0.1:8000 with demo traffic
	@VENV=$(VENV) HOST=$(HOST) PORT=$(PORT) DEMO_RATE=$(DEMO_RATE) scripts/run_demo.sh

test: system venv venv52  ## everything: system packages and services, the suite on Django 6.1, then on 5.2 LTS
	@$(call run_pytest,$(VENV))
	@echo "=== Django 5.2 LTS (browser and packaging tests run once, above) ==="
	@$(MAKE) --no-print-directory test-52 PYTEST_ARGS='-m "not browser and not packaging"'

test-61: venv  ## the suite on Django 6.1 only
	@$(call run_pytest,$(VENV))

test-52: venv52  ## the suite on Django 5.2 LTS only
	@$(call run_pytest,$(VENV52))

system:  ## install (apt-get, as root) and start what the tests use: Chromium, Redis, PostgreSQL
	@scripts/system_deps.sh

$(VENV)/.bench.stamp: $(VENV)/.requirements.stamp $(VENV)/.speedups.stamp $(wildcard bench/requirements.txt)
	@if [ -f bench/requirements.txt ]; then $(VENV)/bin/python -m pip install --disable-pip-version-check -q -r bench/requirements.txt; fi
	@touch $@

bench: system $(VENV)/.bench.stamp  ## the benchmarks, one table of figures (starts Redis and PostgreSQL first)
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

bench-quick: system $(VENV)/.bench.stamp  ## a few-minute subset of the benchmarks (no callgrind request cost)
	$(VENV)/bin/python -m bench --quick $(BENCH_ARGS)

$(VENV)/.dev.stamp: $(VENV)/.requirements.stamp requirements-dev.txt
	@$(VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $@

lint: $(VENV)/.dev.stamp  ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy collector dashboard config

vendor-htmx:  ## re-vendor htmx 4 and its hx-ws/hx-csp extensions from npm (HTMX_VERSION=4.x.y)
	@HTMX_SKILLS_DIR=$(HTMX_SKILLS_DIR) scripts/vendor_htmx.sh $(HTMX_VERSION) $(HTMX_DIR)

clean:  ## remove build output and test artifacts
	rm -rf build dist *.egg-info tests/artifacts .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv*' -prune -exec rm -rf {} +

distclean: clean  ## also remove the virtualenvs and local databases
	rm -rf $(VENV) $(VENV52) db.sqlite3* test_db.sqlite3* signals.sqlite3* collector/_speedups*.so

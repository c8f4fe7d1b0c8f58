# One target per thing a person does. `make run` and `make test` need nothing
# but Python (3.11, 3.12 or 3.13) with venv; the broker is found, started or installed.
# Another Python: `make unit PYTHON=python3.13 VENV=.venv-3.13`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The pinned set every install takes (make, CI, the Dockerfile); `make lock` renews it.
CONSTRAINTS := constraints.txt
PYTEST_ARGS ?=
# The suites run as this many pytest processes at once (tests/parallel.py): most of a run waits.
TEST_PROCESSES ?= 3
PARALLEL = $(PY) -m tests.parallel --processes $(TEST_PROCESSES) --
# The PostgreSQL server `make test-postgres` makes its throwaway databases on.
LINLI_TEST_POSTGRES ?= postgresql://postgres@127.0.0.1:5432

.PHONY: run unit integration e2e test test-slow test-postgres durations fault bench lint lock broker browser proxy promtool wrk postgres install clean

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
	  else echo "make: Python's venv module is missing: sudo apt-get install python3-venv" >&2; exit 1; fi; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[test]"
	touch $@

install: $(VENV)/.installed

broker:
	bash deploy/ensure-broker.sh

browser:
	bash deploy/ensure-chromium.sh

# nginx, curl and systemd-analyze for deploy/single-host/'s tests.
proxy:
	bash deploy/ensure-proxy.sh

# promtool for the alert rules' tests (tests/unit/test_alerts.py), into tools/.
promtool:
	bash deploy/ensure-promtool.sh

# wrk for the bench's wrk phase (issue 20), from Debian's wrk package.
wrk:
	bash deploy/ensure-wrk.sh

postgres:
	LINLI_TEST_POSTGRES=$(LINLI_TEST_POSTGRES) bash deploy/ensure-postgres.sh

run: install broker
	$(VENV)/bin/linli up --demo

# The unit tests alone: about a minute, no broker, no browser (nginx and systemd-analyze check deploy/,
# promtool the alert rules).
# CPU-bound: as many processes as cores.
unit: install proxy promtool
	$(PY) -m tests.parallel --processes 2 -- tests/unit -m "not slow" $(PYTEST_ARGS)

# The services' consumers and RPC against the real RabbitMQ (no processes): about 2 minutes.
integration: install broker
	$(PARALLEL) tests/integration -m "not fault and not slow" $(PYTEST_ARGS)

# The whole stack as processes, HTTP and the browser: about 5 minutes.
e2e: install broker browser
	$(PARALLEL) tests/e2e -m "not fault and not slow" $(PYTEST_ARGS)

# Everything but the slow and the fault runs: about 9 minutes on 2 cores.
test: install broker browser proxy promtool
	$(PARALLEL) -m "not fault and not slow" $(PYTEST_ARGS)

# Broker restarts and alarms, a TLS node, killed instances, the API fuzzed, the single-host stack
# behind nginx, bursts past capacity, the sweeps end to end: about 11 minutes.
test-slow: install broker browser proxy
	$(PARALLEL) -m "slow and not fault" $(PYTEST_ARGS)

# Every test that goes through a service's database (marked `database`, slow ones too), with
# every service's data in PostgreSQL (a new database per stack).
test-postgres: install broker browser proxy postgres
	LINLI_TEST_POSTGRES=$(LINLI_TEST_POSTGRES) $(PARALLEL) -m "database and not fault" $(PYTEST_ARGS)

# Measure every suite again and keep the seconds each test file took (tests/durations.json), by
# which tests/parallel.py deals the files out.
durations: install broker browser proxy promtool
	$(PY) -m tests.parallel --processes $(TEST_PROCESSES) --store -- -m "not fault" $(PYTEST_ARGS)

fault: install broker
	$(PY) -m pytest -m fault $(PYTEST_ARGS)

# bench/README.md: about 14 minutes; `make bench BENCH_ARGS=--quick` about 4. wrk for its wrk phase (issue 20).
bench: install broker wrk
	$(PY) bench/run.py $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check services tests bench

# Renew constraints.txt: the newest releases pyproject.toml's ranges admit, in a fresh venv.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install -q --upgrade pip && .venv-lock/bin/pip install -q -e ".[test]"
	{ sed -n '1,2p' $(CONSTRAINTS); .venv-lock/bin/pip freeze --exclude-editable --all | grep -v '^pip=='; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS) && rm -rf .venv-lock

clean:
	rm -rf var .pytest_cache

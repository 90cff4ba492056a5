# livepulse: `make run` to watch it work, `make test` to prove it. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install compile system-deps kafka-fetch kafka-up kafka-down topics run test unit integration lint clean bench bench-quick

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	LIVEPULSE_COMPILE=0 $(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The core compiled by mypyc beside its sources (setup.py's COMPILED_MODULES), rebuilt when
# one of them changes, so nothing runs a stale extension. Without a C compiler the pure
# modules run, and this says why. LIVEPULSE_PURE_PYTHON=1 ignores the compiled ones.
COMPILED := $(VENV)/.compiled
COMPILED_SOURCES := $(shell sed -n 's/^    "\(processor\/.*\.py\)",$$/\1/p' setup.py)
$(COMPILED): $(STAMP) setup.py $(COMPILED_SOURCES)
	@echo "compiling the core with mypyc (about 30 s)"
	@mkdir -p .local
	LIVEPULSE_COMPILE=auto $(BIN)/python setup.py --quiet build_ext --inplace --force > .local/compile.log 2>&1 \
		|| { tail -30 .local/compile.log; exit 1; }
	@grep -h "^livepulse: not compiling" .local/compile.log | cut -c1-300 || true
	touch $(COMPILED)

install: $(COMPILED)  ## create .venv and install livepulse with its dev tools, the core compiled
compile: $(COMPILED)  ## compile the core with mypyc (again, if a source changed)

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(COMPILED)
	LIVEPULSE_COMPILE=0 $(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

system-deps:  ## install kcat and prometheus from Debian's packages if missing
	bash deploy/system-deps.sh

kafka-fetch:  ## resolve the Kafka broker jars from Maven Central
	bash deploy/kafka/kafka.sh fetch

kafka-up:  ## start the local KRaft broker on 127.0.0.1:9092
	bash deploy/kafka/kafka.sh up

kafka-down:  ## stop the local broker
	bash deploy/kafka/kafka.sh down

topics: kafka-up  ## create live.events, live.alerts and live.events.dlq
	bash deploy/kafka/kafka.sh topics-create live.events:4 live.alerts:4 live.events.dlq:4

run: $(COMPILED) system-deps  ## start broker, worker and simulator; stream alerts until Ctrl-C
	bash deploy/run.sh

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check processor tests bench setup.py
	$(BIN)/ruff format --check processor tests bench setup.py
	$(BIN)/mypy

unit: $(COMPILED)  ## unit tests, on the compiled core and on its Python source (no broker)
	$(BIN)/pytest -q tests/unit
	LIVEPULSE_PURE_PYTHON=1 $(BIN)/pytest -q tests/unit

integration: $(COMPILED) system-deps kafka-fetch  ## tests against a real broker the tests start
	$(BIN)/pytest -q tests/integration

test: $(COMPILED) system-deps kafka-fetch lint  ## everything CI runs: lint, unit and integration tests (compiled core), unit tests again on the Python source
	$(BIN)/pytest -q tests
	LIVEPULSE_PURE_PYTHON=1 $(BIN)/pytest -q tests/unit

bench: $(BENCH_STAMP) kafka-fetch  ## livepulse vs ceiling, Faust, Quix, Kafka Streams on the heavy and simulator workloads, 2M events each (own broker on :39092; 30-40 min)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-quick: $(BENCH_STAMP) kafka-fetch  ## the same on 1M events each, without Faust, 40 s cap (8-12 min)
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)

clean:  ## remove the virtualenv and local broker data (not the fetched jars)
	bash deploy/kafka/kafka.sh down || true
	LIVEPULSE_KAFKA_HOME=.local/kafka-bench LIVEPULSE_KAFKA_PORT=39092 bash deploy/kafka/kafka.sh down || true
	rm -rf $(VENV) .local/kafka/data .local/kafka-test-* .local/kafka-bench .local/bench .local/worker .local/run bench/kstreams/target build
	find processor -name '*.so' -delete

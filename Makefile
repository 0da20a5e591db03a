# The front door. `make demo` and `make test` install what they need on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
STAMP  := $(VENV)/.synced-stamp
# Optional extras from pyproject.toml, e.g. `make install EXTRAS=postgres` (several: EXTRAS="a b").
# The choice is remembered in .venv/.extras, so every later `make` keeps them installed;
# `make install EXTRAS=` forgets it again.
EXTRAS_FILE := $(VENV)/.extras
ifeq ($(origin EXTRAS),undefined)
EXTRAS := $(shell cat $(EXTRAS_FILE) 2>/dev/null)
endif
comma  := ,
override EXTRAS := $(strip $(subst $(comma), ,$(EXTRAS)))

.DEFAULT_GOAL := help
.PHONY: FORCE help install demo sandbox load query report test test-fast bench lint fmt type check reset remap clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.5"

# Rewritten only when the choice changes, so that a change (and only a change) re-syncs.
$(EXTRAS_FILE): FORCE | $(UV)
	@[ -f $@ ] && [ "$$(cat $@)" = "$(EXTRAS)" ] || echo "$(EXTRAS)" > $@

$(STAMP): pyproject.toml uv.lock $(EXTRAS_FILE) | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --extra dev $(EXTRAS:%=--extra %) --quiet
	@touch $@

FORCE:

install: $(STAMP)  ## create .venv with the locked dependencies (EXTRAS=postgres adds Postgres, kept from then on)

demo: $(STAMP)  ## start the sandboxes, load them into demo.duckdb, show what was loaded and write demo-report.html
	$(BIN)/python -m pipelines.demo

sandbox: $(STAMP)  ## serve every sandbox on loopback until Ctrl-C, printing what to export [PORT=8800] [ENV_FILE=f] [DB=f]
	@$(BIN)/python -m sandbox.serve_all $(if $(PORT),--port "$(PORT)") $(if $(ENV_FILE),--env-file "$(ENV_FILE)") $(if $(DB),--db "$(DB)")

load: $(STAMP)  ## load every configured provider into warehouse.duckdb (PROVIDERS=a,b to choose)
	$(BIN)/python -m pipelines.billing load

query: $(STAMP)  ## query the warehouse: make query SQL="SELECT ..." [DB=demo.duckdb] [LIMIT=100] [CSV=out.csv]
	$(BIN)/python -m pipelines.query $(if $(DB),--db "$(DB)") $(if $(LIMIT),--limit "$(LIMIT)") $(if $(CSV),--csv --output "$(CSV)") $(if $(SQL),"$(SQL)")

report: $(STAMP)  ## write the HTML report from the warehouse: make report [OUTPUT=report.html] [DB=demo.duckdb]
	$(BIN)/billing-elt report $(if $(OUTPUT),--output "$(OUTPUT)") $(if $(DB),--db "$(DB)")

reset: $(STAMP)  ## forget one provider's rows and state: make reset PROVIDER=kitchen
	@test -n "$(PROVIDER)" || { echo "usage: make reset PROVIDER=<name>"; exit 2; }
	$(BIN)/python -m pipelines.billing reset $(PROVIDER)

remap: $(STAMP)  ## rows derived again from the stored payloads, no API call: make remap [PROVIDER=kitchen[:label]]
	$(BIN)/python -m pipelines.billing remap $(PROVIDER)

# Most tests wait on sockets, subprocesses and DuckDB more than on the CPU: several run at once
# (one test file per worker, so that a file's shared fixtures are built once). TEST_WORKERS=0: one.
TEST_WORKERS ?= 4
PYTEST := $(BIN)/python -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test: $(STAMP)  ## run the whole test suite (unit + integration against the sandboxes)
	$(PYTEST)

test-fast: $(STAMP)  ## unit tests only
	$(PYTEST) -m "not integration"

bench: $(STAMP)  ## run the benchmarks and write docs/benchmarks.md
	$(BIN)/python -m benchmarks

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)  ## format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

type: $(STAMP)  ## mypy
	$(BIN)/mypy

check: lint type test  ## everything CI cares about

clean:  ## remove the environment and build outputs (not your warehouse.duckdb)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo.duckdb demo-report.html .bench

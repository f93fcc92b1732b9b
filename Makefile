# Control Room — `make up` starts everything locally; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
BOOT := .controlroom/bootstrap
UV := $(BOOT)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never

.PHONY: install up down logs test test-chaos lint bench contracts clean images deadletters

$(UV):
	$(PYTHON) -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet --disable-pip-version-check uv

install: $(UV)  ## create .venv with every workspace member and dev tool, from uv.lock
	$(UV) sync --all-packages --frozen --python $(PYTHON) --quiet

up: install  ## nats-server + Postgres + the six services, in the foreground (Ctrl-C stops)
	$(BIN)/python -m controlroom_devstack up

down:  ## stop a running `make up`
	@test -x $(BIN)/python && $(BIN)/python -m controlroom_devstack down || echo "not installed"

logs:  ## follow logs: make logs [SERVICE=gateway]
	$(BIN)/python -m controlroom_devstack logs $(SERVICE)

lint: install  ## ruff + mypy --strict
	$(BIN)/ruff check .
	$(BIN)/mypy

test: install lint  ## every test, against real nats-server and Postgres
	$(BIN)/pytest

test-chaos: install  ## the whole fault/load/soak suite, long scenarios too (~30 min); rewrites docs/reliability.md
	$(BIN)/pytest tests/chaos -m ""

bench: install  ## latency and throughput beside the targets
	$(BIN)/python -m controlroom_devstack.bench $(ARGS)

deadletters: install  ## dead-lettered messages: make deadletters [ARGS="list | show SEQ | replay SEQ... | replay --all"]
	$(BIN)/python -m controlroom_runtime.deadletters $(or $(ARGS),list)

contracts: install  ## JSON Schemas + AsyncAPI document under contracts-export/
	$(BIN)/python -m controlroom_contracts export contracts-export

images: install  ## the job images (busybox shell, Debian python3), built locally when missing
	$(BIN)/python -m controlroom_devstack.images

clean:  ## remove the environment and all local data
	rm -rf $(VENV) .controlroom contracts-export

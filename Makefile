# `make synth` and `make test` are the two commands the README promises. Both set up on first use:
# a project virtual environment from requirements*.txt and the pinned cdktf CLI from
# package-lock.json. Nothing is installed globally.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Quiet by default: no jsii end-of-life banner on Node 20, no telemetry or update checks.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CHECKPOINT_DISABLE := 1
export DISABLE_VERSION_CHECK := true
# Terraform warns on every call when TF_CLI_CONFIG_FILE names a missing file; a real one is kept.
ifeq ($(wildcard $(TF_CLI_CONFIG_FILE)),)
unexport TF_CLI_CONFIG_FILE
endif

.PHONY: setup synth test lint bench clean drift graph

setup: $(VENV)/.installed node_modules/.installed

# pip -qq: errors only. Build machines whose pip.conf lists find-links or index locations that
# lack a package would otherwise print a WARNING per package on every first setup.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check --no-input -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## synth: `cdktf synth` for every workspace in config/ (cdktf.out/stacks/<workspace>/cdk.tf.json)
synth: setup
	@# Not on a terminal (CI, a pipe), the CLI's spinner would print escape codes: CI=1 stops it.
	if [ -t 1 ]; then node_modules/.bin/cdktf synth; else CI=1 node_modules/.bin/cdktf synth; fi

## drift: kubectl diff of what each workspace applies with kubectl against its cluster
## (WORKSPACES="staging" for some; exit status: see README.md, "Reviewing a change")
drift: $(VENV)/.installed
	$(BIN)/python main.py drift $(WORKSPACES)

## graph: regenerate the apply and destroy picture in README.md from the staging stack
graph: $(VENV)/.installed
	$(BIN)/python main.py graph

## lint: ruff and mypy, also part of `make test`
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## test: lint, type-check and the whole pytest suite
# One worker per CPU (pytest-xdist); --dist loadfile keeps each file's tests, and its module
# fixtures (an applied stack, a warm jsii kernel), in one worker. Most of the suite waits on
# terraform, kubectl and node child processes, so two workers on two cores halve its time.
test: setup lint
	$(BIN)/pytest -n auto --dist loadfile

## bench: synth speed, this app against a plain-import baseline, side by side
bench: setup
	$(BIN)/python bench/synth.py

clean:
	rm -rf cdktf.out cdktf.out.* .pytest_cache .mypy_cache .ruff_cache

# `make train` and `make test` set everything up on a fresh machine, then run.
.PHONY: setup train test lint bench

setup:
	@bash scripts/setup.sh

train: setup
	.venv/bin/r1kit train recipes/r1_zero_arithmetic_smollm2.yaml

test: setup
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

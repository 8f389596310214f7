# `make train` and `make test` set everything up on a fresh machine, then run.
.PHONY: setup train test test-slow lint bench

setup:
	@bash scripts/setup.sh

train: setup
	.venv/bin/r1kit train recipes/r1_zero_arithmetic_smollm2.yaml

# The default tier (under 20 minutes on 2 cores); test-slow: the minutes-long cases (the built-in
# model's conversion, kills and resumes, a two-node Ray cluster, vLLM engines killed in Ray actors).
test: setup
	.venv/bin/python -m pytest -q -m "not slow" --durations=10

test-slow: setup
	.venv/bin/python -m pytest -q -m slow --durations=10

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

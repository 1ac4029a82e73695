PY ?= .venv/bin/python

.PHONY: install test test-all lint bench

install:
	python3 -m venv .venv
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"

test:
	$(PY) -m pytest

test-all:
	$(PY) -m pytest -m "slow or not slow"

lint:
	$(PY) -m ruff check sar_colorizer tests bench
	$(PY) -m mypy sar_colorizer

bench:
	$(PY) bench/speckle_bench.py

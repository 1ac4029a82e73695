PY ?= .venv/bin/python
SARCOLOR ?= .venv/bin/sarcolor
DATA ?= ../shared/data/s1s2-la-texas
BEN ?= ../shared/data/bigearthnet-configilm
RUNS ?= runs
TRAIN_FLAGS ?=

.PHONY: install test test-all lint bench train-default eval-default train-multipol

install:
	python3 -m venv .venv
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev,onnx]"

test:
	$(PY) -m pytest

test-all:
	$(PY) -m pytest -m "slow or not slow"

lint:
	$(PY) -m ruff check sar_colorizer tests bench tools docs/experiments
	$(PY) -m mypy sar_colorizer

bench:
	$(PY) bench/speckle_bench.py
	$(PY) bench/pipeline_bench.py
	$(PY) bench/predict_bench.py

# Reproduce the shipped default model on CPU (about 25 minutes on 2 cores): Los Angeles `train`
# and BigEarthNet `train` in the dos optical convention, VH only, each batch from one of them
# (source_weights in models/default.toml); training ends by fitting the novelty term of the
# confidence (the shipped weights got it afterwards from bench/fit_novelty.py, the same steps);
# then score it on the unseen test splits (Texas, BigEarthNet). Copy $(RUNS)/default/{model.keras,bundle.json} into
# sar_colorizer/weights/default/ to ship it.
train-default:
	$(SARCOLOR) preprocess $(DATA) $(RUNS)/chips_la --band-names VH --optical-convention dos --overwrite
	$(SARCOLOR) preprocess $(BEN) $(RUNS)/chips_ben --bands VH --optical-convention dos --overwrite
	$(SARCOLOR) train $(RUNS)/chips_la $(RUNS)/chips_ben $(RUNS)/default --config models/default.toml --overwrite $(TRAIN_FLAGS)

eval-default:
	$(SARCOLOR) eval $(RUNS)/default $(DATA) --split test --report $(RUNS)/eval_test --overwrite
	$(SARCOLOR) eval $(RUNS)/default $(BEN) --split test --report $(RUNS)/eval_ben_test --overwrite

# The candidate for every polarisation (models/README.md, "A candidate for every polarisation"):
# the default recipe with a network that takes VH, VV or both; BigEarthNet with both bands.
train-multipol:
	$(SARCOLOR) preprocess $(DATA) $(RUNS)/chips_la --band-names VH --optical-convention dos --overwrite
	$(SARCOLOR) preprocess $(BEN) $(RUNS)/chips_ben_dual --bands VV,VH --optical-convention dos --overwrite
	$(SARCOLOR) train $(RUNS)/chips_la $(RUNS)/chips_ben_dual $(RUNS)/multipol --config models/variants/multipol.toml --overwrite $(TRAIN_FLAGS)

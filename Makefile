# `make test` and `make search` set up .venv on first use, then run.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUDGET ?= 30ms

.PHONY: install test search clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(BIN)/.installed

test: install
	$(BIN)/python -m pytest -q

search: install
	$(BIN)/python -m nas.search --budget $(BUDGET)

clean:
	rm -rf $(VENV) build *.egg-info

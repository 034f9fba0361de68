# `make test` and `make search` set up what they need on first use (.venv, Debian packages), then run.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUDGET ?= 30ms
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install sshd data test search clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(BIN)/.installed

# The remote-measurement tests start a real OpenSSH server on 127.0.0.1.
sshd:
	@test -x /usr/sbin/sshd || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq openssh-server openssh-client)

# Fashion-MNIST from Debian when it can be had; elsewhere nas.search downloads it into a cache.
data:
	@test -d /usr/share/datasets/fashion-mnist || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist) || echo "dataset-fashion-mnist not installed: nas.search will download Fashion-MNIST"

test: install sshd
	$(BIN)/python -m pytest -q

search: install data
	$(BIN)/python -m nas.search --budget $(BUDGET)

clean:
	rm -rf $(VENV) build *.egg-info

# `make test` and `make search` set up what they need on first use (.venv, Debian packages), then run.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUDGET ?= 30ms
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Throwaway PostgreSQL cluster of the many-workers tests (their URL: $(PG_DIR)/url); `make test`
# uses one of its own.
PG_DIR ?= /tmp/repghost-test-postgres

.PHONY: install sshd postgres postgres-stop data test search clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(BIN)/.installed

# The remote-measurement tests start a real OpenSSH server on 127.0.0.1.
sshd:
	@test -x /usr/sbin/sshd || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq openssh-server openssh-client)

# The many-workers tests also run against a real PostgreSQL server: a throwaway cluster in
# $(PG_DIR) on 127.0.0.1 (a free port), run by the postgres user when we are root (initdb refuses
# root; from / so that it may enter the working directory). It is reused while it runs;
# `make postgres-stop` removes it.
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql)
	@cd / && bin=$$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); \
	as=$$([ "$$(id -u)" = 0 ] && echo "runuser -u postgres --"); \
	if [ -f $(PG_DIR)/url ] && $$as $$bin/pg_ctl -D $(PG_DIR)/data status >/dev/null 2>&1; then exit 0; fi; \
	rm -rf $(PG_DIR) && mkdir -p $(PG_DIR) && { [ -z "$$as" ] || chown postgres $(PG_DIR); } && \
	port=$$($(PY) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') && \
	$$as $$bin/initdb -D $(PG_DIR)/data -U postgres -A trust --no-sync >$(PG_DIR)/initdb.log 2>&1 && \
	$$as $$bin/pg_ctl -D $(PG_DIR)/data -l $(PG_DIR)/server.log -w -o "-c listen_addresses=127.0.0.1 -p $$port -k $(PG_DIR) -c fsync=off" start >/dev/null && \
	echo "postgresql://postgres@127.0.0.1:$$port/postgres" >$(PG_DIR)/url || { cat $(PG_DIR)/*.log; exit 1; }

postgres-stop:
	@cd / && bin=$$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1); \
	as=$$([ "$$(id -u)" = 0 ] && echo "runuser -u postgres --"); \
	[ ! -d $(PG_DIR)/data ] || $$as $$bin/pg_ctl -D $(PG_DIR)/data -m fast -w stop >/dev/null 2>&1 || true; \
	rm -rf $(PG_DIR)

# Fashion-MNIST from Debian when it can be had; elsewhere nas.search downloads it into a cache.
data:
	@test -d /usr/share/datasets/fashion-mnist || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist) || echo "dataset-fashion-mnist not installed: nas.search will download Fashion-MNIST"

# Each test run starts a server of its own in a fresh folder and stops it on exit, even when cut
# short, so that two runs on one machine never stop each other's server.
test: install data sshd
	@dir=$$(mktemp -d /tmp/repghost-test-postgres.XXXXXX) && \
	trap "$(MAKE) -s postgres-stop PG_DIR=$$dir" EXIT && trap 'exit 130' INT && trap 'exit 143' TERM && \
	$(MAKE) -s postgres PG_DIR=$$dir && \
	REPGHOST_TEST_POSTGRES_URL=$$(cat $$dir/url) $(BIN)/python -m pytest -q

search: install data
	$(BIN)/python -m nas.search --budget $(BUDGET)

clean:
	rm -rf $(VENV) build *.egg-info

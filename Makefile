# Baoxiu — the two commands are `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test lint migrate demo bench install clean-run

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/pybabel compile --use-fuzzy -d server/locale -D messages >/dev/null
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/baoxiu run

test: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check server workers tests bench

migrate: $(STAMP)
	$(BIN)/baoxiu with-services -- $(BIN)/baoxiu migrate

demo: $(STAMP)
	$(BIN)/baoxiu with-services -- sh -c '$(BIN)/baoxiu migrate && $(BIN)/baoxiu demo'

bench: $(STAMP)
	$(BIN)/baoxiu with-services --root .run/bench --database baoxiu_bench -- $(BIN)/python -m bench

clean-run:
	rm -rf .run

# Re-extract msgids into the catalogs (then translate the new zh_CN entries).
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _ -o server/locale/messages.pot --no-location --omit-header . >/dev/null
	$(BIN)/pybabel update -i server/locale/messages.pot -d server/locale -D messages --no-fuzzy-matching --ignore-obsolete

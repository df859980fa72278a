# Two commands do all the set-up on a fresh machine:
#   make demo   screen the bundled demo patients against the seed trial
#   make test   run the whole test suite (starts PostgreSQL on loopback)
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/eligibility compile trials/ucmsc_t2dm.ctgov.json
	@mkdir -p results
	$(BIN)/eligibility screen trials/ucmsc_t2dm.ctgov.json patients/demo_ucmsc.csv -o results/demo_ucmsc.csv --as-of 2026-01-01 --report results/demo_ucmsc.html

test: $(BIN)/.installed
	scripts/run-tests $(BIN)/python

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis

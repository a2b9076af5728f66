# lumachrome: set-up, demo, tests and benchmarks. Works on a fresh clone, without stdin.
#   make run    - colorize a few sample photos (out/colorized/, out/comparison.png)
#   make test   - run the test suite
#   make bench  - run the benchmarks (Markdown tables on stdout)
#   make clean  - remove outputs and caches (keeps .venv; `make distclean` removes it too)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lumachrome-installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all setup run test bench clean distclean

all: run

setup: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-installs when pyproject.toml changes (torch is pinned there to 2.13.0).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) scripts/make_samples.py

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf out build dist .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) src/*.egg-info

# lumachrome: set-up, demo, tests and benchmarks. Works on a fresh clone, without stdin.
#   make run    - colorize a few sample photos (out/colorized/, out/comparison.png)
#   make test   - run the test suite and execute the notebooks (notebooks/*.ipynb, through nbmake)
#   make bench  - run the benchmarks (Markdown tables on stdout)
#   make clean  - remove outputs and caches (keeps .venv; `make distclean` removes it too)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lumachrome-installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all setup browser run test bench clean distclean

all: run

setup: $(STAMP) browser

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-installs when pyproject.toml changes (torch is pinned there to 2.13.0).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# Headless Chromium for the browser tests (the `browser` fixture of tests/conftest.py). Installed with
# apt-get only when missing, only as root and non-interactively; never fails the build (those tests skip).
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium + chromium-driver with apt-get (for the browser tests)"; \
	  ( export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
	    apt-get install -y -qq --no-install-recommends chromium chromium-driver ) </dev/null >/dev/null 2>&1 \
	  || echo "note: could not install chromium with apt-get; the browser tests will be skipped"; \
	else \
	  echo "note: chromium/chromedriver not found (as root: apt-get install chromium chromium-driver); the browser tests will be skipped"; \
	fi

run: $(STAMP)
	$(PY) scripts/make_samples.py

# The notebooks run with small settings (about 2 minutes on 2 cores), so they never rot.
test: $(STAMP) browser
	$(PY) -m pytest -q -p no:cacheprovider tests --nbmake notebooks

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf out build dist .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) src/*.egg-info

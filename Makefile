# chat-feedback: `make run` starts the app, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test test-slow test-spark bench venv clean browser widget

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

venv: $(VENV)/.installed

run: $(VENV)/.installed  ## start the app on http://127.0.0.1:7860 (echo responder, logs to ./data)
	$(PY) app.py

browser:  ## Debian's Chromium for the browser tests (installed when root; elsewhere those tests skip)
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "no /usr/bin/chromium and not root: the browser tests will skip"; fi; }

widget:  ## rebuild feedback/web/widget_dist from widget/src (Node 20 + npm; the build is committed)
	cd widget && npm ci --no-audit --no-fund && npm run build

test: $(VENV)/.installed-test browser  ## the whole suite (the full hh-rlhf replay is `make test-slow`)
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: $(VENV)/.installed-test browser  ## long end-to-end runs only
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

$(VENV)/.installed-spark: $(VENV)/.installed-test requirements-spark.txt
	$(PY) -m pip install --quiet -r requirements-spark.txt
	touch $@

test-spark: $(VENV)/.installed-spark  ## the README's Spark (local mode) and DuckDB DPO queries vs export dpo; needs Java 17+
	@command -v java >/dev/null || { echo "test-spark needs a Java 17+ runtime (java on PATH)"; exit 1; }
	$(PY) -m pytest -m spark tests/test_spark.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV)

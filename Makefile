# chat-feedback: `make run` starts the app, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test test-slow bench venv clean

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

test: $(VENV)/.installed-test  ## the whole suite (the full hh-rlhf replay is `make test-slow`)
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: $(VENV)/.installed-test  ## long end-to-end runs only
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV)

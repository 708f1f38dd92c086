# The README's commands. Both install what they need into the current Python.
PYTHON ?= python3
BUILD ?= build

.PHONY: install demo test lint

install:
	$(PYTHON) -m pip install -q -e '.[convert,test]'

# Main job, offline: make the default checkpoint, convert it to a verified int8 bundle, run tasks on a sample.
demo: install
	$(PYTHON) -m converters.test_checkpoints $(BUILD)/demo-checkpoint
	florence-edge convert $(BUILD)/demo-checkpoint -o $(BUILD)/demo-bundle --force
	florence-edge check $(BUILD)/demo-bundle
	florence-edge run -m $(BUILD)/demo-bundle -i samples/scene0.png -t CAPTION -t OD -t OCR_WITH_REGION \
		--max-new-tokens 64 --draw $(BUILD)/demo-scene0.jpg

test: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -q

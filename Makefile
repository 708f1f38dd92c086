# The README's commands. Both install what they need into the current Python.
PYTHON ?= python3
BUILD ?= build

.PHONY: install demo train-demo test

install:
	$(PYTHON) -m pip install -q -e '.[convert,test]'

# Main job, offline: convert the committed demo model to a verified int8 bundle and run tasks on a sample.
DEMO_MODEL ?= models/florence2-shapes
demo: install
	florence-edge convert $(DEMO_MODEL) -o $(BUILD)/demo-bundle --force
	florence-edge check $(BUILD)/demo-bundle
	florence-edge run -m $(BUILD)/demo-bundle -i samples/shapes-1.png -t CAPTION -t OD -t OCR_WITH_REGION \
		--draw $(BUILD)/demo-shapes.jpg
	florence-edge run -m $(BUILD)/demo-bundle -i samples/shapes-1.png -t REFERRING_EXPRESSION_SEGMENTATION \
		--text "the red square" --draw $(BUILD)/demo-segmentation.jpg

# Retrain the demo model from its seed (about 45 minutes on 2 cores).
train-demo: install
	$(PYTHON) -m converters.train_demo -o $(DEMO_MODEL)

test: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -q

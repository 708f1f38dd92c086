# The README's commands. Both install what they need into the current Python.
PYTHON ?= python3
BUILD ?= build

.PHONY: install demo train-demo test test-arm arm-sysroot chromium systemd mosquitto rtsp-server node phone

install:
	$(PYTHON) -m pip install -q -e '.[convert,camera,mqtt,test]'

# Main job, offline: convert the committed demo model to a verified int8 bundle and run tasks on a sample.
DEMO_MODEL ?= models/florence2-shapes
demo: install
	florence-edge convert $(DEMO_MODEL) -o $(BUILD)/demo-bundle --force --reuse
	florence-edge check $(BUILD)/demo-bundle
	florence-edge run -m $(BUILD)/demo-bundle -i samples/shapes-1.png -t CAPTION -t OD -t OCR_WITH_REGION \
		--draw $(BUILD)/demo-shapes.jpg --force
	florence-edge run -m $(BUILD)/demo-bundle -i samples/shapes-1.png -t REFERRING_EXPRESSION_SEGMENTATION \
		--text "the red square" --draw $(BUILD)/demo-segmentation.jpg --force
	florence-edge live -m $(BUILD)/demo-bundle --source scenes -t OD -t CAPTION --frames 60 \
		--record $(BUILD)/demo-live.mp4 --force

# Retrain the demo model from its seed (about 45 minutes on 2 cores).
train-demo: install
	$(PYTHON) -m converters.train_demo -o $(DEMO_MODEL)

# Everything, the emulated ARM cores, the web page in a headless browser and systemd's verdict on the
# units included (the sysroot is built once, about 40 s, 430 MB; Debian's chromium, systemd, mosquitto
# and GStreamer's RTSP server are installed where missing, as root).
test: install arm-sysroot chromium systemd mosquitto rtsp-server phone
	$(PYTHON) -m ruff check .
	FLORENCE_EDGE_ARM_SYSROOT=$(ARM_SYSROOT) $(PYTHON) -m pytest -q

# Only the device runtime on emulated Cortex-A53, A72 and A76 against this host.
test-arm: install arm-sysroot
	FLORENCE_EDGE_ARM_SYSROOT=$(ARM_SYSROOT) $(PYTHON) -m pytest -q -m arm

ARM_SYSROOT ?= $(BUILD)/arm64-sysroot
arm-sysroot:
	PYTHON=$(PYTHON) bash tests/arm/make_sysroot.sh $(ARM_SYSROOT)

# The browser the web view's page is tested in (driven by playwright, which uses it as it is).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# systemd-analyze, which verifies the units and rates their exposure (nothing is started).
systemd:
	@command -v systemd-analyze >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq systemd >/dev/null; }

# The MQTT broker events are published to in the tests (started by them on a free loopback port).
mosquitto:
	@command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || { apt-get update -qq && apt-get install -y -qq mosquitto >/dev/null; }

# A network camera for the tests: GStreamer's RTSP server with H.264 (x264), driven by Debian's python3-gi.
rtsp-server:
	@/usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer" \
		2>/dev/null && gst-inspect-1.0 x264enc >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq \
		--no-install-recommends python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
		gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-tools >/dev/null; }

# Node, which runs the phone page's JavaScript modules against the Python ones in the tests, and npm.
node:
	@command -v npm >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }

# The phone page's LiteRT.js, from npm by its lock file, into the package (served from the board, which
# may have no internet): the library and two of its four WebAssembly builds, with relaxed SIMD (1.8x
# faster here) and without (browsers that lack it); not the threaded one, which a page needs HTTPS for,
# nor the JSPI one.
PHONE = edge/phone
LITERT_JS = $(PHONE)/node_modules/@litertjs
phone: node
	cd $(PHONE) && npm ci --no-audit --no-fund --silent
	mkdir -p $(PHONE)/vendor
	cp $(LITERT_JS)/core/dist/index.js $(PHONE)/vendor/litert.js
	cp $(LITERT_JS)/wasm-utils/dist/index.js $(PHONE)/vendor/wasm-utils.js
	cp $(LITERT_JS)/core/wasm/litert_wasm_internal.* $(LITERT_JS)/core/wasm/litert_wasm_compat_internal.* $(PHONE)/vendor/

"""The README's and the guides' examples, run as written: every command line that can run on this
machine runs on the demo bundle (a placeholder such as BUNDLE or photo.jpg stands for it or for a
sample), and every Python block runs. A line that cannot run here says why, below."""

import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
from expect import ROOT, SAMPLE

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# What a line needs that this machine does not have, by a piece of the line.
CANNOT_RUN = {
    "picamera2": "a Raspberry Pi camera", "/dev/video0": "a USB camera",
    "rtsp://": "a network camera (tests/live/test_sources.py runs live on GStreamer's RTSP server)",
    "sudo ": "root on a board", "scp ": "a board to copy to", "~/": "a board's home folder",
    "getconf": "a board's OS", "/opt/florence-edge": "a board's installation", "systemctl": "a running systemd",
    "pip install": "installing (make test installs the same extras)", "florence-community/": "the Hugging Face hub",
    "./my-finetune": "the reader's own checkpoint", "florence2-base-int8": "a base bundle converted from the hub",
    "mine.toml": "the reader's own config file", "benchmarks/peers.py": "15 minutes (tests/benchmarks checks its peer)",
    "make ": "the Makefile (CI runs make test)", "--http": "a browser (tests/live/test_browser.py drives one)",
    "--force --reuse": "converting for 100 s (tests/converters/test_fingerprint.py runs --reuse)",
}
_UNTIL_STOPPED = 15  # seconds a `live` line without --frames runs before Ctrl-C


def _blocks(language: str):
    for page in PAGES:
        for block in re.findall(rf"```{language}\n(.*?)```", page.read_text(), re.S):
            yield page, block


def _command_lines():
    for page, block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                yield pytest.param(line.strip(), id=f"{page.name}: {line.strip()[:60]}")


@pytest.fixture(scope="module")
def workspace(demo_int8_bundle, tmp_path_factory):
    """A folder with what the examples name: the bundle as BUNDLE and build/demo-bundle, pictures, a clip."""
    folder = tmp_path_factory.mktemp("guides")
    (folder / "build").mkdir()
    (folder / "build" / "demo-bundle").symlink_to(demo_int8_bundle[0])
    for name in ("photo.jpg", "a.jpg", "b.jpg"):
        shutil.copy(SAMPLE, folder / name)
    env = _environment()
    subprocess.run(["florence-edge", "live", "-m", str(demo_int8_bundle[0]), "--source", "scenes", "-t", "OD",
                    "--frames", "20", "--record", "clip.mp4"], cwd=folder, env=env, check=True, capture_output=True)
    return folder


def _environment() -> dict:
    bin_dir = os.path.dirname(sys.executable)  # where pip put the florence-edge command
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("line", list(_command_lines()))
def test_a_command_of_the_guides_runs_as_written(line, workspace):
    needs = next((why for piece, why in CANNOT_RUN.items() if piece in line), None)
    if needs:
        pytest.skip(f"needs {needs}")
    command = line.replace("BUNDLE", "build/demo-bundle")
    if " live " in f" {command} " and "--frames" not in command and "--source scenes" in command:
        proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=workspace, env=_environment(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            proc.wait(timeout=_UNTIL_STOPPED)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # as a reader stops it
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "Traceback" not in err, err[-2000:]
        assert out.strip(), "it printed nothing before it was stopped"
        return
    done = subprocess.run(["bash", "-c", command], cwd=workspace, env=_environment(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize("page, block", list(_blocks("python")), ids=lambda v: getattr(v, "name", ""))
def test_a_python_example_of_the_guides_runs(page, block, demo_int8_bundle):
    """`bundle_dir` is the demo bundle and `image` a sample picture, the names the examples use."""
    from PIL import Image

    code = block.replace('"bundle_dir"', repr(str(demo_int8_bundle[0])))
    exec(compile(code, f"{page.name} example", "exec"), {"image": Image.open(SAMPLE)})

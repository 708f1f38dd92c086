"""edge.quiet: native log lines held, and shown when the work fails or the process dies."""

import signal
import subprocess
import sys

import pytest

CRASH = """
import ctypes, os
from edge.quiet import quiet
with quiet("loading model.tflite"):
    os.write(2, b"native: about to fail\\n")
    print("python inside quiet")
    {crash}
"""


@pytest.mark.parametrize("crash, sig", [("ctypes.string_at(0)", signal.SIGSEGV), ("os.abort()", signal.SIGABRT)])
def test_a_dying_process_still_shows_its_last_words(crash, sig):
    proc = subprocess.run([sys.executable, "-c", CRASH.format(crash=crash)], capture_output=True, text=True)
    assert proc.returncode == -sig  # it still dies of the same signal
    assert "native: about to fail\npython inside quiet\n" in proc.stderr
    assert f"died of {sig.name} while loading model.tflite" in proc.stderr


def test_handlers_are_restored_after_quiet():
    code = "import ctypes\nfrom edge.quiet import quiet\nwith quiet('x'):\n    pass\nctypes.string_at(0)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGSEGV and "florence-edge" not in proc.stderr


def test_held_lines_are_shown_on_failure_only(capfd):
    import os

    from edge.quiet import quiet

    with quiet():
        os.write(2, b"noise\n")
    assert capfd.readouterr().err == ""
    with pytest.raises(ValueError), quiet():
        os.write(2, b"the reason\n")
        raise ValueError
    assert "the reason" in capfd.readouterr().err

"""The package build (configuration in setup.cfg): a wheel carries the phone page's LiteRT.js, so a
board with no internet serves it. It comes from npm by edge/phone's lock file through `make phone`,
run here when a checkout has not run it; without npm the package builds without it, and `/app/`
says to run `make phone`. Editable installs use the checkout's own edge/phone/vendor."""

import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithPhonePage(build_py):
    def run(self):
        if not getattr(self, "editable_mode", False) and not (ROOT / "edge/phone/vendor/litert.js").exists():
            done = subprocess.run(["make", "-C", str(ROOT), "phone"], capture_output=True, text=True)
            if done.returncode:
                print(f"florence-edge: the phone page's LiteRT.js was not fetched (make phone: "
                      f"{(done.stderr.strip().splitlines() or ['failed'])[-1]}); /app/ will say so",
                      file=sys.stderr)
        super().run()


setup(cmdclass={"build_py": BuildWithPhonePage})

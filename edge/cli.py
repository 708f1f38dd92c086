"""`florence-edge <command>`: each command is a module with configure_parser() and main().

Commands are imported only when chosen, so the device never imports the
converter (or torch) unless someone asks it to convert.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import warnings

from edge import cpu
from edge.errors import FlorenceEdgeError, FlorenceEdgeWarning

COMMANDS = {
    "convert": ("converters.convert", "convert a Florence-2 checkpoint to a LiteRT bundle"),
    "verify": ("converters.verify", "compare a bundle with its PyTorch checkpoint"),
    "check": ("edge.commands.check", "verify every file checksum of a bundle"),
    "run": ("edge.commands.run", "run Florence-2 tasks on images"),
    "bench": ("edge.commands.bench", "measure on-device latency of a bundle"),
    "eval": ("edge.demo.eval", "measure a bundle of the demo model on held-out synthetic scenes"),
    "live": ("edge.live.command", "run tasks on a camera, stream or video, results drawn as they decode"),
    "serve": ("edge.live.serve", "serve the phone page and a bundle: phones answer with their own camera and CPU"),
    "service": ("edge.live.service", "install florence-edge live as a systemd service for a board"),
    "doctor": ("edge.live.doctor", "what this machine is and has, what fits on it, and which profile to use"),
}
# Packages only the `convert` extra installs.
_CONVERT_EXTRA = {"torch", "transformers", "litert_torch", "ai_edge_quantizer", "safetensors"}


def _load(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in _CONVERT_EXTRA:
            print(f"florence-edge: this command needs the 'convert' extra ({exc.name} is missing): "
                  "pip install 'florence-edge[convert]'", file=sys.stderr)
            raise SystemExit(2) from None  # bad input, as the README's exit codes say
        raise


def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("florence-edge")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="florence-edge", description="Florence-2 on edge devices (LiteRT)")
    parser.add_argument("--version", action="version", version=f"florence-edge {version()}")
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if name == selected:
            _load(module_name).configure_parser(command)
    return parser


# "-10,5,100,100" would read as an option to argparse: a flag's value that starts with a minus
# and a digit is joined to the flag ("--region=-10,5,100,100").
_NEGATIVE_VALUE = re.compile(r"-\.?\d")


def _join_negative_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    for arg in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE_VALUE.match(arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


_default_show = warnings.showwarning


def _show_warning(command: str):
    """Our warnings as one line, like our errors, each once (an image loop would repeat them);
    other libraries' as Python shows them."""
    shown = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, FlorenceEdgeWarning):
            if str(message) not in shown:
                shown.add(str(message))
                print(f"florence-edge {command}: note: {message}", file=sys.stderr)
        else:
            _default_show(message, category, filename, lineno, file, line)

    return show


def main(argv: list[str] | None = None) -> int:
    """Every command ends the same way: 0 done; 2 bad input (`FlorenceEdgeError`, one line); the
    error's own EXIT_CODE where it has one; 130 Ctrl-C; 141 a closed pipe."""
    problem = cpu.platform_problem()
    if problem:
        print(f"florence-edge: {problem}", file=sys.stderr)
        return 2
    argv = _join_negative_values(sys.argv[1:] if argv is None else list(argv))
    selected = next((a for a in argv if a in COMMANDS), None)
    args = build_parser(selected).parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 2
    warnings.showwarning = _show_warning(args.command)
    try:
        return _load(COMMANDS[args.command][0]).main(args)
    except FlorenceEdgeError as exc:
        print(f"florence-edge {args.command}: {exc}", file=sys.stderr)
        return exc.EXIT_CODE
    except KeyboardInterrupt:  # Ctrl-C: what was being written is removed on the way out
        print(f"\nflorence-edge {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to tell it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit is quiet too
        return 141


if __name__ == "__main__":
    sys.exit(main())

"""`florence-edge check BUNDLE [--run]`: every file's sha256 against the manifest; with `--run`, the
self-test a long run starts with (`edge.self_test`): the probe answered on this CPU and compared."""

from __future__ import annotations

import argparse
import sys

from edge.manifest import load_manifest, verify_checksums
from edge.runtime import add_runtime_argument
from edge.self_test import load_checked


def check(bundle_dir) -> dict[str, bool]:
    """Python twin of the command: file name -> checksum matches."""
    return verify_checksums(load_manifest(bundle_dir))


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="bundle directory")
    parser.add_argument("--run", action="store_true",
                        help="also run the self-test: the probe picture answered here against the conversion's "
                             "answer (a damaged weight cache is packed again)")
    add_runtime_argument(parser)


def main(args: argparse.Namespace) -> int:
    results = check(args.bundle)
    for name, ok in results.items():
        print(f"{'ok ' if ok else 'BAD'} {name}")
    bad = [n for n, ok in results.items() if not ok]
    if bad:
        print(f"florence-edge check: checksum mismatch in {', '.join(bad)} (file altered or corrupt)",
              file=sys.stderr)
        return 1
    if args.run:
        model, tested = load_checked(args.bundle, runtime=args.runtime)
        model.close()
        print(f"{'ok ' if tested.passed else '-- '} self-test ({model.runtime} runtime, {tested.ms:.0f} ms): "
              f"{tested.note}")
    return 0

"""`florence-edge check BUNDLE`: every file's sha256 against the manifest."""

from __future__ import annotations

import argparse
import sys

from edge.manifest import load_manifest, verify_checksums


def check(bundle_dir) -> dict[str, bool]:
    """Python twin of the command: file name -> checksum matches."""
    return verify_checksums(load_manifest(bundle_dir))


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="bundle directory")


def main(args: argparse.Namespace) -> int:
    results = check(args.bundle)
    for name, ok in results.items():
        print(f"{'ok ' if ok else 'BAD'} {name}")
    bad = [n for n, ok in results.items() if not ok]
    if bad:
        print(f"florence-edge check: checksum mismatch in {', '.join(bad)} (file altered or corrupt)",
              file=sys.stderr)
        return 1
    return 0

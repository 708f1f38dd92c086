"""The bundle contract: what `manifest.json` holds and how the device checks it.

The converter writes this format and the runtime reads it; both import the names
from here so they cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from edge.errors import FlorenceEdgeError

FORMAT = "florence-edge-bundle"
FORMAT_VERSION = 4  # 3: host tensors flat, cross K/V in their shapes, self K transposed; 4: prompt buckets
MANIFEST_NAME = "manifest.json"
TOKENIZER_NAME = "tokenizer.json"

# Graph roles and the signature names inside each file.
VISION = "vision"
ENCODER = "encoder"
DECODER = "decoder"
GRAPH_ROLES = (VISION, ENCODER, DECODER)


def encode_signature_name(prompt_len: int) -> str:
    return f"encode_p{prompt_len}"


def decode_signature_name(batch: int, cache: int, prompt_len: int) -> str:
    return f"decode_b{batch}_s{cache}_p{prompt_len}"


@dataclass(frozen=True)
class Manifest:
    """A parsed, format-checked manifest; `raw` keeps every field as written."""

    root: Path
    raw: dict

    @property
    def model(self) -> dict:
        return self.raw["model"]

    @property
    def image(self) -> dict:
        return self.raw["image"]

    @property
    def tokens(self) -> dict:
        return self.raw["special_tokens"]

    @property
    def tasks(self) -> dict:
        return self.raw["tasks"]

    @property
    def generation(self) -> dict:
        return self.raw["generation"]

    @property
    def quantization(self) -> str:
        return self.raw["quantization"]["name"]

    def graph(self, role: str) -> dict:
        return self.raw["graphs"][role]

    def graph_path(self, role: str) -> Path:
        return self.root / self.graph(role)["file"]

    def signature(self, role: str, key: str) -> dict:
        """{"inputs"/"outputs": name -> {"shape", "dtype"}} of one signature, real shapes."""
        return self.graph(role)["signatures"][key]

    def file_sha256(self, role: str) -> str:
        return self.raw["files"][self.graph(role)["file"]]["sha256"]

    @property
    def prompt_lens(self) -> list[int]:
        """The prompt lengths the text encoder and decoder have signatures for, shortest first."""
        return sorted(self.model["prompt_lens"])

    def decoder_buckets(self) -> list[tuple[int, int]]:
        """(batch, cache size) of every decoder signature, smallest cache first."""
        return sorted(
            ((b["batch"], b["cache"]) for b in self.graph(DECODER)["buckets"]), key=lambda bc: (bc[1], bc[0])
        )


def load_manifest(bundle_dir: str | Path) -> Manifest:
    """Read and check a bundle's manifest: format, version and file sizes (not hashes)."""
    root = Path(bundle_dir)
    if not root.is_dir():
        raise FlorenceEdgeError(f"bundle not found: {root} is not a directory")
    path = root / MANIFEST_NAME
    if not path.is_file():
        raise FlorenceEdgeError(f"not a florence-edge bundle: {path} is missing")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FlorenceEdgeError(f"corrupt manifest {path}: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise FlorenceEdgeError(f"not a florence-edge bundle: {path} has no format '{FORMAT}'")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise FlorenceEdgeError(
            f"bundle format version {version} is not supported by this runtime (it reads version {FORMAT_VERSION}); "
            "convert the model again with the matching florence-edge"
        )
    manifest = Manifest(root, raw)
    _check_sizes(manifest)
    return manifest


def _check_sizes(manifest: Manifest) -> None:
    for name, entry in manifest.raw["files"].items():
        path = manifest.root / name
        if not path.is_file():
            raise FlorenceEdgeError(f"bundle file missing: {path}")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise FlorenceEdgeError(f"bundle file {path} has {size} bytes, the manifest says {entry['bytes']}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksums(manifest: Manifest) -> dict[str, bool]:
    """sha256 of every bundle file against the manifest; name -> matches."""
    return {name: sha256_of(manifest.root / name) == entry["sha256"] for name, entry in manifest.raw["files"].items()}

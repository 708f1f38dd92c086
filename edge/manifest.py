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
from edge.postprocess import KINDS

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
    def trained_tasks(self) -> list[str] | None:
        """The tasks the model was trained for, if the checkpoint said (None: every task)."""
        return self.raw.get("trained_tasks")

    @property
    def measured(self) -> dict | None:
        """What `convert` measured of the bundle, if it did: by runtime path, `peak_rss_mb` of a run
        with the weight cache written and `first_start_peak_rss_mb` of the first (packing) one;
        `machine`, and what ran: `task`, greedy, `tokens` (the largest cache)."""
        return self.raw.get("measured")

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
    """Read and check a bundle's manifest: format, version, schema, file names and sizes (not hashes)."""
    if not isinstance(bundle_dir, (str, Path)):
        raise FlorenceEdgeError(f"a bundle is a directory path, got {type(bundle_dir).__name__}")
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
    problem = _schema_problem(raw, _SCHEMA, "") or _contract_problem(raw)
    if problem:
        raise FlorenceEdgeError(f"corrupt manifest {path}: {problem}")
    manifest = Manifest(root, raw)
    _check_files(manifest)
    return manifest


class _Map:
    """A JSON object whose keys are names of the bundle's choosing, each value of one schema."""

    def __init__(self, schema):
        self.schema = schema


_NUMBER = (int, float)
_TENSOR = {"shape": [int], "dtype": str}
_SIGNATURES = _Map({"inputs": _Map(_TENSOR), "outputs": _Map(_TENSOR)})
_GRAPH = {"file": str, "signatures": _SIGNATURES}
# What the runtime reads, and nothing else: fields it does not read (created, source, tools,
# parity ...) stay free for the converter to change.
_SCHEMA = {
    "model": {"decoder_layers": int, "image_tokens": int, "prompt_lens": [int]},
    "image": {"height": int, "width": int, "mean": [_NUMBER], "std": [_NUMBER], "resample": int,
              "rescale_factor": _NUMBER},
    "special_tokens": {name: int for name in ("bos", "eos", "pad", "decoder_start")},
    "tasks": _Map({"prompt": str, "post_processing": str}),
    "post_processing": dict,
    "generation": {"num_beams": int, "no_repeat_ngram_size": int, "early_stopping": bool,
                   "length_penalty": _NUMBER, "max_new_tokens": int, "forced_bos_token_id": int,
                   "forced_eos_token_id": int},
    "graphs": {VISION: _GRAPH, ENCODER: _GRAPH, DECODER: {**_GRAPH, "buckets": [{"batch": int, "cache": int}]}},
    "files": _Map({"bytes": int, "sha256": str}),
    "quantization": {"name": str},
}
# optional: bundles converted before it was measured lack it
_MEASURED = {"peak_rss_mb": _Map(_NUMBER), "first_start_peak_rss_mb": _Map(_NUMBER), "machine": str,
             "task": str, "tokens": int}
_LOW_MEMORY = _Map(_NUMBER)  # measured.low_memory_peak_rss_mb: optional, newer than the rest
_DTYPES = {"float32", "float16", "int32", "int64", "int8", "uint8", "bool"}


def _schema_problem(value, schema, where: str) -> str | None:
    """The first place `value` departs from `schema`, as "key.sub: what is wrong"; None if it fits."""
    if isinstance(schema, _Map):
        if not isinstance(value, dict):
            return f"{_at(where)} must be an object"
        return next((p for k, v in value.items() if (p := _schema_problem(v, schema.schema, f"{where}.{k}"))), None)
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{_at(where)} must be an object"
        missing = [k for k in schema if k not in value]
        if missing:
            return f"{_at(where + '.' + missing[0])} is missing"
        return next((p for k, s in schema.items() if (p := _schema_problem(value[k], s, f"{where}.{k}"))), None)
    if isinstance(schema, list):
        if not isinstance(value, list):
            return f"{_at(where)} must be a list"
        return next((p for i, v in enumerate(value) if (p := _schema_problem(v, schema[0], f"{where}[{i}]"))), None)
    # bool is an int to Python, never to the manifest
    if isinstance(value, bool) != (schema is bool) or not isinstance(value, schema):
        names = " or ".join(t.__name__ for t in (schema if isinstance(schema, tuple) else (schema,)))
        return f"{_at(where)} must be {names}, not {type(value).__name__}"
    return None


def _at(where: str) -> str:
    return where.lstrip(".") or "manifest"


def _contract_problem(raw: dict) -> str | None:
    """What the schema cannot say: plain file names, graphs among the hashed files, known kinds and dtypes."""
    for name in raw["files"]:
        if name in ("", ".", "..") or name != Path(name).name or "\\" in name:
            return f"file name {name!r} is not a plain name inside the bundle"
    for role in GRAPH_ROLES:
        graph = raw["graphs"][role]
        if graph["file"] not in raw["files"]:
            return f"graphs.{role}.file {graph['file']!r} is not among the bundle's files"
        for key, sig in graph["signatures"].items():
            for name, tensor in (*sig["inputs"].items(), *sig["outputs"].items()):
                if tensor["dtype"] not in _DTYPES or any(n < 0 for n in tensor["shape"]):
                    return f"graphs.{role}.signatures.{key}: tensor {name} has no valid dtype and shape"
    if TOKENIZER_NAME not in raw["files"]:
        return f"{TOKENIZER_NAME} is not among the bundle's files"
    if not raw["model"]["prompt_lens"] or not raw["graphs"][DECODER]["buckets"]:
        return "model.prompt_lens and graphs.decoder.buckets must not be empty"
    unknown = {t["post_processing"] for t in raw["tasks"].values()} - set(KINDS)
    if unknown:
        return f"unknown post-processing type {sorted(unknown)[0]!r}"
    trained = raw.get("trained_tasks")
    if trained is not None and (not isinstance(trained, list) or not set(trained) <= set(raw["tasks"])):
        return "trained_tasks must be a list of the bundle's tasks"
    measured = raw.get("measured")
    if measured is not None and _schema_problem(measured, _MEASURED, "measured"):
        return _schema_problem(measured, _MEASURED, "measured")
    if measured is not None and not measured["peak_rss_mb"]:
        return "measured.peak_rss_mb names no runtime path"
    if measured is not None and "low_memory_peak_rss_mb" in measured:
        return _schema_problem(measured["low_memory_peak_rss_mb"], _LOW_MEMORY, "measured.low_memory_peak_rss_mb")
    return None


def _check_files(manifest: Manifest) -> None:
    """Every listed file present, of its size, and inside the bundle folder (a link may not lead out)."""
    root = manifest.root.resolve()
    for name, entry in manifest.raw["files"].items():
        path = manifest.root / name
        if not path.is_file():
            raise FlorenceEdgeError(f"bundle file missing: {path}")
        if path.resolve().parent != root:
            raise FlorenceEdgeError(f"bundle file {path} leads outside the bundle folder; copy the file itself in")
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

"""`florence-edge convert`: a Florence-2 checkpoint becomes a verified LiteRT bundle."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from converters import bundle as bw
from converters import export, recipes, verify
from converters.calibration import DEFAULT_PICTURES, calibration_pictures, vision_samples
from converters.errors import ConversionError
from converters.fingerprint import fingerprint, recorded
from converters.graphs import Dims
from converters.source import check_image_size, load_source, resize_source
from edge import manifest as mf
from edge.bundle_memory import measure_bundle
from edge.cpu import usable_cpus
from edge.errors import FlorenceEdgeError
from edge.files import publish
from edge.memory import available_mb
from edge.quiet import quiet

DEFAULT_CACHES = (64, 256, 1024)
# Every fixed task prompt fits 32 tokens (the longest, a region task, takes 19); 128 leaves
# room for grounding phrases and referring expressions.
DEFAULT_PROMPT_LENS = (32, 128)
_LONGEST_TASK = 32


class _Stages:
    """The conversion's stages: a line on the terminal as each starts and ends; everything torch,
    litert-torch, the quantizer and absl print meanwhile is held (shown with `verbose`), and a
    failure inside a stage becomes one `StageFailed` line with the held output in its log."""

    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.terminal = sys.stderr
        self.interrupted = False

    @contextlib.contextmanager
    def holding(self):
        """Hold library output for the whole conversion, the terminal kept for progress lines; and
        remember a Ctrl-C, which Python may raise where it is dropped (inside a garbage-collector
        callback JAX registers), so every stage's end raises it again."""
        with self._remembering_interrupts():
            if self.verbose:
                yield
                return
            self.terminal = os.fdopen(os.dup(2), "w", buffering=1)
            try:
                with quiet("converting", show_on_failure=False):
                    yield
            finally:
                self.terminal.close()
                self.terminal = sys.stderr

    @contextlib.contextmanager
    def _remembering_interrupts(self):
        if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
            yield
            return

        def interrupted(signum, frame):
            self.interrupted = True
            raise KeyboardInterrupt

        before = signal.signal(signal.SIGINT, interrupted)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, before)

    @contextlib.contextmanager
    def __call__(self, label: str):
        print(f"[florence-edge] {label} ...", file=self.terminal, flush=True)
        start = time.perf_counter()
        held = contextlib.nullcontext() if self.verbose else quiet(label, show_on_failure=False)
        try:
            with held:
                yield
        except ConversionError:
            raise
        except Exception as exc:
            if self.interrupted:  # the Ctrl-C, surfacing inside a library as its own error
                raise KeyboardInterrupt from None
            raise StageFailed(label, exc) from exc
        if self.interrupted:
            raise KeyboardInterrupt
        print(f"[florence-edge] {label}: done in {time.perf_counter() - start:.1f} s", file=self.terminal,
              flush=True)


class StageFailed(ConversionError):
    """A conversion stage (export, quantization, verification) failed inside torch, litert-torch or
    the quantizer: one line naming the stage, its graph and what the library said (for the quantizer,
    the tensor); the traceback and the libraries' held output go to a log file the line names."""

    EXIT_CODE = 3

    def __init__(self, label: str, exc: BaseException):
        self.log = _write_log(label, exc)
        said = " ".join(str(exc).split())[:400] or type(exc).__name__
        super().__init__(f"{label} failed: {said} (details: {self.log})")


def _write_log(label: str, exc: BaseException) -> Path:
    fd, name = tempfile.mkstemp(prefix="florence-edge-convert-", suffix=".log")
    with open(fd, "w") as log:
        log.write(f"stage: {label}\n\n{''.join(traceback.format_exception(exc))}")
        if getattr(exc, "held_log", ""):  # set by quiet(show_on_failure=False) as exc left it
            log.write(f"\nwhat the libraries printed:\n{exc.held_log}")
    return Path(name)


def decoder_buckets(caches, beams: int, max_positions: int) -> list[tuple[int, int]]:
    """(batch, cache) pairs: greedy and `beams`-wide, each cache capped by the position table."""
    sizes = sorted({min(int(c), max_positions) for c in caches})
    batches = sorted({1, beams})
    return [(b, s) for b in batches for s in sizes]


def _check_output(out: Path, force: bool) -> None:
    """Refuse an output that would lose a file of the user's: `--force` replaces only an earlier
    bundle's own files (those its manifest lists, and the manifest)."""
    if out.exists() and not out.is_dir():
        raise ConversionError(f"output {out} exists and is a file")
    if not out.exists() or not any(out.iterdir()):
        return
    if not force:
        raise ConversionError(f"output {out} already exists; pass --force to replace the bundle files in it")
    earlier = _earlier_bundle_files(out)
    for name in (*bw.GRAPH_FILES.values(), mf.TOKENIZER_NAME, mf.MANIFEST_NAME):
        path = out / name
        if (path.exists() or path.is_symlink()) and (name not in earlier or not path.is_file()):
            raise ConversionError(f"output {out} holds {name}, which is not a file of an earlier bundle there; "
                                  "--force replaces only those: move it away or choose another output")


def _earlier_bundle_files(out: Path) -> set[str]:
    """The names an earlier bundle in `out` owns, by its manifest; none without a readable one."""
    try:
        manifest = json.loads((out / mf.MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return set()
    if not isinstance(manifest, dict) or manifest.get("format") != mf.FORMAT or not isinstance(
            manifest.get("files"), dict):
        return set()
    return {*manifest["files"], mf.MANIFEST_NAME}


def _partial_folder(out: Path) -> tempfile.TemporaryDirectory:
    """Where the bundle is built, beside `out`, so installing it is a rename; gone if anything fails."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.partial-")
    except OSError as exc:
        raise ConversionError(f"cannot write the bundle beside {out}: {exc.strerror} "
                              f"({exc.filename or out.parent})") from None


def _install(staging: Path, out: Path, force: bool) -> None:
    """Move the finished bundle into place; other files already in `out` are left alone."""
    _check_output(out, force)  # again: the conversion took minutes
    out.mkdir(parents=True, exist_ok=True)
    for item in staging.iterdir():
        publish(item, out / item.name)  # also undoes the quantizer's executable bits


def convert(src: str, out, quant: str = "int8", caches=DEFAULT_CACHES, beams: int | None = None,
            prompt_lens=DEFAULT_PROMPT_LENS, force: bool = False,
            verify_tokens: int = verify.DEFAULT_TOKENS, verbose: bool = False, image_size: int | None = None,
            calibration_images: str | None = None, reuse: bool = False) -> dict:
    """Python twin of `florence-edge convert`; returns the written manifest.

    `verbose`: let the libraries' own output through instead of holding it; `image_size`: the square
    picture side the bundle takes, if not the checkpoint's; `calibration_images`: a folder of pictures
    for a static recipe (default: drawn scenes); `reuse`: leave a bundle in `out` that converting again would
    give unchanged (see `up_to_date`) and return its manifest."""
    out = Path(out).expanduser()
    options = _options(quant, caches, beams, prompt_lens, verify_tokens, image_size)
    if reuse and (existing := up_to_date(src, out, options, calibration_images)) is not None:
        return existing
    if quant not in recipes.RECIPES:
        raise ConversionError(f"unknown quantization {quant!r}; choose from {', '.join(recipes.RECIPES)}")
    if image_size is not None:
        check_image_size(image_size)
    _check_output(out, force)
    stages = _Stages(verbose)
    with _partial_folder(out) as partial, stages.holding():
        manifest = _convert(src, Path(partial), quant, caches, beams, prompt_lens, verify_tokens, image_size,
                            calibration_images, stages)
        manifest["conversion"] = {"fingerprint": fingerprint(src, options, calibration_images), "options": options}
        bw.write_manifest(manifest, Path(partial) / "bundle")
        _install(Path(partial) / "bundle", out, force)
    return manifest


def _options(quant, caches, beams, prompt_lens, verify_tokens, image_size) -> dict:
    return {"quant": quant, "caches": sorted(caches), "beams": beams, "prompt_lens": sorted(prompt_lens),
            "verify_tokens": verify_tokens, "image_size": image_size}


def up_to_date(src: str, out: Path, options: dict, calibration_images: str | None) -> dict | None:
    """The manifest of the bundle in `out` if converting `src` again would give the same bundle (the
    same checkpoint files, converter, libraries and options) and its files are intact; else None."""
    fp = fingerprint(src, options, calibration_images)
    if fp is None or fp != recorded(out):
        return None
    try:
        manifest = mf.load_manifest(out)
    except FlorenceEdgeError:
        return None
    return manifest.raw if all(mf.verify_checksums(manifest).values()) else None


def _convert(src, partial: Path, quant, caches, beams, prompt_lens, verify_tokens, image_size, calibration_images,
             _stage) -> dict:
    """Build the bundle in `partial`/bundle; returns its manifest."""
    with _stage(f"load {src}"):
        source = load_source(src)
    if image_size is not None:
        resize_source(source, image_size)
    text = source.model.config.text_config
    max_prompt = text.max_position_embeddings - source.image_tokens
    prompt_lens = sorted({int(p) for p in prompt_lens})
    if not prompt_lens or not all(8 <= p <= max_prompt for p in prompt_lens) or prompt_lens[-1] < _LONGEST_TASK:
        raise ConversionError(f"--prompt-lens must be between 8 and {max_prompt} for this model, the longest "
                              f"at least {_LONGEST_TASK} (every task's prompt)")
    dims = Dims.from_model(source.model, source.image_size[0], source.image_tokens, prompt_lens[-1])
    beams = beams or int(source.model.generation_config.num_beams or 1)
    buckets = decoder_buckets(caches, beams, text.max_position_embeddings)

    work, staging = partial / "fp32", partial / "bundle"
    work.mkdir()
    staging.mkdir()
    quantization = recipes.describe(quant)
    calibration = None
    if any(recipes.needs_calibration(parts) for parts in recipes.RECIPES[quant].values()):
        pictures, quantization["calibration"] = calibration_pictures(calibration_images)
        calibration = vision_samples(source, pictures)
    parallel = second_process_pays(source.model, len(buckets) * len(prompt_lens))
    float_paths, shapes = export.convert_graphs(source.model, dims, buckets, prompt_lens, work, _stage, parallel)
    for role, path in float_paths.items():
        target = staging / bw.GRAPH_FILES[role]
        recipe = recipes.RECIPES[quant][role]
        if recipe is None:
            shutil.move(str(path), target)
            continue
        with _stage(f"quantize {role} graph ({quant})"):
            recipes.quantize_file(str(path), str(target), recipe,
                                  calibration if recipes.needs_calibration(recipe) else None)
    with _stage("write tokenizer and manifest"):
        bw.write_tokenizer(source, staging)
        manifest = bw.build_manifest(source, dims, buckets, prompt_lens, quantization, staging, shapes)
        bw.write_manifest(manifest, staging)
    with _stage("verify against PyTorch"):
        manifest["parity"] = verify.parity_report(source, staging, verify_tokens)
        bw.write_manifest(manifest, staging)
    with _stage("measure peak memory"):
        manifest["measured"] = measure_bundle(staging)  # what `live` checks a board's memory against
        bw.write_manifest(manifest, staging)
    with _stage("record the self-test probe"):
        manifest["probe"] = verify.probe_record(staging)  # what every long run checks itself against
        bw.write_manifest(manifest, staging)
    return manifest


def second_process_pays(model, decoder_signatures: int) -> bool:
    """Convert the decoder beside the other graphs when there are two cores, memory for two
    conversions at once (36 bytes a parameter: base peaked at 4.2 GB for 0.23 B parameters in one
    process) and enough decoder signatures (6, at about 4-10 s each) to outweigh starting a process
    that imports torch again (about 5 s)."""
    room = available_mb()
    parameters = sum(p.numel() for p in model.parameters())
    return (usable_cpus() >= 2 and decoder_signatures >= 6 and room is not None
            and room[0] * 2**20 >= 36 * parameters)


def summary(manifest: dict, seconds: float) -> str:
    sizes = ", ".join(f"{name} {entry['bytes'] / 1e6:.1f} MB" for name, entry in manifest["files"].items())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"converted in {seconds:.0f} s, peak RSS {peak:.0f} MB; {sizes}"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="hub id (florence-community/Florence-2-base) or local checkpoint directory")
    parser.add_argument("-o", "--output", required=True, help="bundle directory to write")
    parser.add_argument("--quant", default="int8", choices=sorted(recipes.RECIPES), help="quantization recipe")
    parser.add_argument("--cache-sizes", default=",".join(map(str, DEFAULT_CACHES)),
                        help="decoder self-attention cache sizes (comma-separated)")
    parser.add_argument("--beams", type=int, default=None,
                        help="beam width with its own decoder signature (default: the checkpoint's num_beams)")
    parser.add_argument("--prompt-lens", default=",".join(map(str, DEFAULT_PROMPT_LENS)),
                        help="prompt lengths in tokens with their own signatures (comma-separated; the longest is "
                             "the limit)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="square picture side the bundle takes, a multiple of 32 (default: the checkpoint's, 768 "
                             "for Florence-2); smaller runs the vision graph faster, at an accuracy not measured here")
    parser.add_argument("--calibration-images", metavar="DIR",
                        help="pictures like the camera's for --quant int8-static to calibrate the vision graph on "
                             f"(the first {DEFAULT_PICTURES}; default: drawn scenes)")
    parser.add_argument("--verify-tokens", type=int, default=verify.DEFAULT_TOKENS,
                        help="new tokens per verification case")
    parser.add_argument("--force", action="store_true", help="replace bundle files in an existing output directory")
    parser.add_argument("--reuse", action="store_true",
                        help="leave the bundle in the output alone if it was converted from the same local checkpoint "
                             "files with this converter and these options, and is intact")
    parser.add_argument("--verbose", action="store_true",
                        help="show the libraries' own output, and a failed stage's traceback")


def _integers(flag: str, text: str) -> list[int]:
    try:
        return [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise ConversionError(f"{flag} must be integers, got {text!r}") from None


def main(args: argparse.Namespace) -> int:
    """0 done, 1 the bundle failed its parity check (kept, for inspection), 2 bad input, 3 a stage failed."""
    start = time.perf_counter()
    caches = _integers("--cache-sizes", args.cache_sizes)
    prompt_lens = _integers("--prompt-lens", args.prompt_lens)
    if args.reuse and up_to_date(args.src, Path(args.output).expanduser(), _options(
            args.quant, caches, args.beams, prompt_lens, args.verify_tokens, args.image_size),
            args.calibration_images) is not None:
        print(f"bundle in {args.output} is up to date (the same checkpoint files, converter and options; its files "
              "intact): not converted again")
        return 0
    try:
        manifest = convert(args.src, args.output, args.quant, caches, args.beams, prompt_lens, args.force,
                           args.verify_tokens, args.verbose, args.image_size, args.calibration_images)
    except StageFailed as exc:
        if args.verbose:
            traceback.print_exception(exc.__cause__)
        raise
    print(verify.format_report(manifest["parity"]))
    print(summary(manifest, time.perf_counter() - start))
    print(f"bundle written to {args.output}")
    return 0 if manifest["parity"]["passed"] else 1

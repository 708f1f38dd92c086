"""`florence-edge bench`: on-device latency, in the spirit of llama-bench and benchmark_model.

Fixed token counts (`--new-tokens`, EOS ignored) make runs comparable across boards.
Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from edge import cpu
from edge.commands.profile import format_profiles, profile_bundle
from edge.errors import FlorenceEdgeError
from edge.fixed_decode import decode_fixed, timed
from edge.manifest import load_manifest
from edge.memory import peak_rss_mb, reset_peak_rss
from edge.model import Florence2
from edge.prompts import normalize_task
from edge.runtime import add_runtime_argument, runtime_name, select_runtime


@dataclass
class Row:
    task: str
    threads: int
    new_tokens: int
    load_ms: float
    vision_ms: float
    vision_sd: float
    encoder_ms: float
    encoder_sd: float
    first_token_ms: float
    decode_ms_per_token: float
    decode_sd: float
    tokens_per_s: float
    end_to_end_ms: float
    peak_rss_mb: float
    bundle_mb: float
    quantization: str
    cpu: str
    os: str
    runtime: str
    commit: str


def _stats(values) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def bench(bundle, tasks=("<CAPTION>",), threads=None, reps: int = 5, warmup: int = 1, new_tokens: int = 32,
          image=None, progress=None, runtime: str | None = None) -> list[Row]:
    """Python twin of the command: one Row per (threads, task); `threads` defaults to the CPUs this
    process may use."""
    from edge.demo.scenes import make_scene

    threads = threads or [cpu.usable_cpus()]
    image = image if image is not None else make_scene(1_000_000).image
    rows = []
    # The first load ever writes the packed-weight cache; every load timed below reads it.
    first = Florence2(bundle, threads[0], runtime=runtime)
    bundle_mb = sum(entry["bytes"] for entry in first.manifest.raw["files"].values()) / 1e6
    first.close()
    for n_threads in threads:
        reset_peak_rss()  # each thread count's peak is its own model's, not the previous one's
        model, load_ms = timed(Florence2, bundle, n_threads, True, runtime)
        for task in tasks:
            vision, encoder, first, steps = [], [], [], []
            for rep in range(warmup + reps):
                if progress:
                    progress(f"threads {n_threads} {task}: run {rep + 1}/{warmup + reps}")
                enc, v_ms = timed(model.encode, image)
                e_ms, f_ms, s_ms = decode_fixed(model, enc, task, new_tokens)
                if rep >= warmup:
                    vision.append(v_ms)
                    encoder.append(e_ms)
                    first.append(f_ms)
                    steps += s_ms
            v, v_sd = _stats(vision)
            e, e_sd = _stats(encoder)
            d, d_sd = _stats(steps)
            ttft = v + e + statistics.fmean(first)
            rows.append(Row(
                task=normalize_task(task), threads=n_threads, new_tokens=new_tokens, load_ms=load_ms,
                vision_ms=v, vision_sd=v_sd, encoder_ms=e, encoder_sd=e_sd, first_token_ms=ttft,
                decode_ms_per_token=d, decode_sd=d_sd, tokens_per_s=1e3 / d if d else float("inf"),
                end_to_end_ms=ttft + d * (new_tokens - 1),
                peak_rss_mb=peak_rss_mb(), bundle_mb=bundle_mb,
                quantization=model.manifest.quantization, cpu=cpu.name(),
                os=f"{platform.system()} {platform.release()}", runtime=f"{runtime_version()} ({model.runtime})",
                commit=commit(),
            ))
        model.close()
    return rows


def runtime_version() -> str:
    from importlib import metadata

    name = runtime_name()
    try:
        return f"{name} {metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return name


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


_COLUMNS = [("task", "task", "{}"), ("threads", "thr", "{}"), ("load_ms", "load ms", "{:.0f}"),
            ("vision_ms", "vision ms", "{:.1f}"), ("encoder_ms", "encoder ms", "{:.1f}"),
            ("first_token_ms", "TTFT ms", "{:.1f}"), ("decode_ms_per_token", "decode ms/tok", "{:.2f}"),
            ("tokens_per_s", "tok/s", "{:.1f}"), ("end_to_end_ms", "e2e ms", "{:.0f}"),
            ("peak_rss_mb", "peak RSS MB", "{:.0f}")]


def format_rows(rows: list[Row], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([asdict(r) for r in rows], indent=2)
    if fmt == "csv":
        fields = list(asdict(rows[0]))
        return "\n".join([",".join(fields)] + [",".join(str(getattr(r, f)) for f in fields) for r in rows])
    head = "| " + " | ".join(label for _, label, _ in _COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(_COLUMNS)]
    for r in rows:
        cells = []
        for key, _, pattern in _COLUMNS:
            cell = pattern.format(getattr(r, key))
            sd = {"vision_ms": r.vision_sd, "encoder_ms": r.encoder_sd, "decode_ms_per_token": r.decode_sd}.get(key)
            cells.append(f"{cell} ± {sd:.2f}" if sd is not None else cell)
        lines.append("| " + " | ".join(cells) + " |")
    r = rows[0]
    lines.append(f"\nbundle {r.bundle_mb:.1f} MB ({r.quantization}), {r.new_tokens} new tokens per run; "
                 f"{r.cpu}; {r.os}; {r.runtime}; commit {r.commit}")
    return "\n".join(lines)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", required=True, help="bundle directory")
    parser.add_argument("-t", "--task", action="append", help="task (repeatable; default CAPTION)")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="thread counts to compare (default: the CPUs this process may use)")
    parser.add_argument("-r", "--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=32, help="decoder steps per run (EOS ignored)")
    parser.add_argument("-i", "--image", help="image to encode (default: a synthetic scene)")
    parser.add_argument("-o", "--output", choices=("md", "json", "csv"), default="md")
    parser.add_argument("--profile", action="store_true",
                        help="where each graph's time goes: parts and op kinds timed alone, with their "
                             "multiply-adds (the first --threads count; --reps runs each)")
    add_runtime_argument(parser)


def main(args: argparse.Namespace) -> int:
    if args.reps < 1 or args.new_tokens < 1 or args.warmup < 0:
        raise FlorenceEdgeError("--reps and --new-tokens must be at least 1, --warmup at least 0")
    if args.threads and min(args.threads) < 1:
        raise FlorenceEdgeError("--threads must be at least 1")
    progress = lambda msg: print(f"[florence-edge] bench {msg}", file=sys.stderr)  # noqa: E731
    if args.profile:
        threads = (args.threads or [cpu.usable_cpus()])[0]
        runtime = select_runtime(args.runtime, load_manifest(args.model).quantization)
        profiles = profile_bundle(args.model, threads, runtime, args.reps, progress)
        print(format_profiles(profiles, args.output, threads, cpu.peak_gmacs(threads)))
        return 0
    rows = bench(args.model, args.task or ["<CAPTION>"], args.threads, args.reps,
                 args.warmup, args.new_tokens, args.image,
                 progress=progress, runtime=args.runtime)
    print(format_rows(rows, args.output))
    return 0

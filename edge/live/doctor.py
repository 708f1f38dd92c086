"""`florence-edge doctor`: what this machine is and has, whether a bundle fits, which profile to use.

Everything is read, nothing is changed and no graph runs: it answers in a second on a Pi 3. The
same facts come back from `diagnose()` as a dict (`--json` prints it).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from importlib import metadata
from pathlib import Path

from edge import bundle_memory, cpu, memory, runtime
from edge.errors import FlorenceEdgeError
from edge.live import config, throttle
from edge.manifest import load_manifest

# The instruction-set features the int8 kernels care about, as the kernel names them.
_FEATURES = {
    "aarch64": {"NEON": ("asimd",), "dot product": ("asimddp",), "i8mm": ("i8mm",), "fp16": ("fphp", "asimdhp")},
    "x86_64": {"AVX2": ("avx2",), "AVX-512": ("avx512f",), "AVX-512 VNNI": ("avx512_vnni",),
               "AVX-VNNI": ("avx_vnni",), "AMX int8": ("amx_int8",)},
}
# Of a board's memory, Linux sees at least this share (MemTotal): firmware and CMA take the rest
# (a 1 GB Pi shows about 906 MB).
_SEEN = 0.8
_MODEL_FILES = ("/sys/firmware/devicetree/base/model", "/proc/device-tree/model")


def board_model() -> str:
    """The device tree's model ('Raspberry Pi 4 Model B Rev 1.4'), else the firmware's product name."""
    for path in _MODEL_FILES:
        text = _read(path).rstrip("\0").strip()
        if text:
            return text
    vendor, product = _read("/sys/class/dmi/id/sys_vendor").strip(), _read("/sys/class/dmi/id/product_name").strip()
    return " ".join(p for p in (vendor, product) if p) or platform.node() or "unknown"


def cpu_features() -> dict[str, bool]:
    have = cpu.features()
    table = _FEATURES.get(cpu.machine(), {})
    return {label: all(name in have for name in names) for label, names in table.items()}


def cameras() -> list[str]:
    """V4L2 capture nodes by name, and the cameras libcamera sees (when picamera2 is installed)."""
    found = []
    for node in sorted(Path("/sys/class/video4linux").glob("video*")):
        found.append(f"/dev/{node.name}: {_read(node / 'name').strip() or 'unnamed'}")
    found += _libcamera_cameras()
    return found


def _libcamera_cameras() -> list[str]:
    try:
        from picamera2 import Picamera2
    except ImportError:
        return []
    try:
        found = Picamera2.global_camera_info()
        return [f"picamera2:{i}: {info.get('Model', 'camera')}" for i, info in enumerate(found)]
    except Exception as exc:  # libcamera's own failures come in every type; doctor reports, never crashes
        return [f"picamera2: cannot list cameras ({exc})"]


def suggest_profile(model: str, ram_mb: float | None) -> tuple[str | None, str]:
    """(profile, why) for a board model string and its memory; a board short of its profile's memory
    gets the largest Raspberry Pi profile its memory allows."""
    profiles = {name: config.read_file(config.profile_path(name)) for name in config.profile_names()}
    match = next((name for name, p in profiles.items() if any(model.startswith(m) for m in p.get("models", ()))),
                 None)
    if match is None:
        if cpu.machine() == "aarch64":
            return "generic-aarch64", "an aarch64 board without a profile of its own"
        return None, f"no board profile for {cpu.machine()}: the defaults suit a workstation"
    if ram_mb is None or ram_mb >= _SEEN * profiles[match]["ram_mb"]:
        return match, f"this is a {profiles[match]['name']}"
    smaller = [n for n, p in profiles.items() if p.get("models") and p["ram_mb"] <= ram_mb / _SEEN]
    if not smaller:
        return match, f"this is a {profiles[match]['name']}, with less memory than any profile expects"
    best = max(smaller, key=lambda n: profiles[n]["ram_mb"])
    return best, f"a {profiles[match]['name']} with {ram_mb:.0f} MB: {best}'s limits fit its memory"


def bundle_fit(bundle: str) -> dict:
    """Does `bundle` fit in the memory this machine has left, on the runtime path it would take?"""
    manifest = load_manifest(bundle)
    try:
        path = runtime.select_runtime(None, manifest.quantization)
    except FlorenceEdgeError as exc:  # an int4 bundle on a path that cannot run it
        return {"bundle": bundle, "path": None, "need_mb": None, "fits": False, "why": str(exc)}
    need = bundle_memory.bundle_need(manifest, path)
    fit = {"bundle": bundle, "path": path, "need_mb": need}
    if need is None:
        return {**fit, "fits": None, "why": "not measured (converted before convert measured memory)"}
    try:
        bundle_memory.check_fits(manifest, path)
    except FlorenceEdgeError as exc:
        return {**fit, "fits": False, "why": str(exc)}
    return {**fit, "fits": True, "why": f"needs about {need:.0f} MB at its peak on the {path} path"}


def diagnose(bundle: str | None = None) -> dict:
    total = memory.total_mb()
    available = memory.available_mb()
    folder = runtime.cache_folder()
    profile, why = suggest_profile(board_model(), total)
    report = {
        "board": board_model(),
        "os": f"{platform.system()} {platform.release()} ({cpu.machine()})",
        "cpu": cpu.name(),
        "cpus": cpu.usable_cpus(),
        "cpu_features": cpu_features(),
        "memory_mb": {"total": round(total) if total else None,
                      "available": round(available[0]) if available else None,
                      "limited_by": available[1] if available else None},
        "cameras": cameras(),
        "throttled": None if (flags := throttle.read_flags()) is None else throttle.describe(flags),
        "runtime": _runtime(),
        "weight_cache": {"folder": str(folder) if folder else None,
                         "free_mb": round(shutil.disk_usage(folder).free / 2**20) if folder else None},
        "profile": profile,
        "profile_why": why,
    }
    if bundle is not None:
        report["bundle"] = bundle_fit(bundle)
    return report


def _runtime() -> dict:
    try:
        name = runtime.runtime_name()
        path = runtime.select_runtime()
    except FlorenceEdgeError as exc:
        return {"package": None, "problem": str(exc)}
    blocked, lacking = runtime.compiled_runtime_blockers() if name == "ai-edge-litert" else ("", "")
    return {"package": f"{name} {metadata.version(name)}", "path": path,
            "why": f"{blocked} needs {lacking}" if blocked else ""}


def _read(path) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def format_report(report: dict) -> str:
    features = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in report["cpu_features"].items()) or "not reported"
    mem = report["memory_mb"]
    rt = report["runtime"]
    cache = report["weight_cache"]
    lines = [
        f"board:        {report['board']}",
        f"os:           {report['os']}",
        f"cpu:          {report['cpu']}, {report['cpus']} usable",
        f"cpu features: {features}",
        f"memory:       {mem['total']} MB total, {mem['available']} MB {mem['limited_by'] or 'available'}",
        f"cameras:      {'; '.join(report['cameras']) or 'none found'}",
        f"throttling:   {_throttling(report['throttled'])}",
        f"runtime:      {rt.get('package') or rt.get('problem')}"
        + (f", {rt['path']} path" if rt.get("path") else "") + (f" ({rt['why']})" if rt.get("why") else ""),
        f"weight cache: {cache['folder'] or 'none (weights packed in memory at every load)'}"
        + (f", {cache['free_mb']} MB free" if cache["folder"] else ""),
    ]
    if "bundle" in report:
        fit = report["bundle"]
        verdict = {True: "fits", False: "does not fit", None: "unknown"}[fit["fits"]]
        lines.append(f"bundle:       {fit['bundle']}: {verdict}; {fit['why']}")
    lines.append(f"profile:      {report['profile'] or 'none'} ({report['profile_why']})")
    return "\n".join(lines)


def _throttling(seen: dict | None) -> str:
    if seen is None:
        return "not reported (no Raspberry Pi firmware flags)"
    advice = " (a 5 V 3 A supply and a heatsink or fan: the loop slows while it lasts)" if any(seen.values()) else ""
    return f"{', '.join(seen['now']) or 'none'} now; since boot: {', '.join(seen['since_boot']) or 'none'}{advice}"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", help="a bundle: does it fit in this machine's memory?")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def main(args: argparse.Namespace) -> int:
    report = diagnose(args.model)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0

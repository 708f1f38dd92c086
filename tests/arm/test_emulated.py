"""The device runtime on emulated Raspberry Pi cores: QEMU user mode, a Debian arm64 sysroot with the
stock aarch64 wheels (tests/arm/make_sysroot.sh, `make test-arm`), this checkout's source.

Cortex-A53 (Pi 3, Zero 2 W) and A72 (Pi 4, CM4) are ARMv8.0 and take the interpreter path; the A76
(Pi 5, CM5) takes the compiled one. Every core must give the tokens and parsed results this x86 host
gives. Correctness only: emulation says nothing about speed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import drive
import pytest

pytestmark = pytest.mark.arm

REPO = Path(__file__).resolve().parents[2]
SYSROOT = Path(os.environ.get("FLORENCE_EDGE_ARM_SYSROOT", REPO / "build" / "arm64-sysroot"))
# QEMU 7.2 emulates no aarch64 /proc/cpuinfo; XNNPACK reads the core (MIDR) from it and takes wrong
# paths without one. Features as QEMU's model of each core reports them (its A53/A72 include the crypto
# extension, which the Pi's BCM2837/BCM2711 lack; nothing here depends on it).
CPUS = {
    "cortex-a53": ("0x0", "0xd03", "4", "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"),
    "cortex-a72": ("0x0", "0xd08", "3", "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"),
    "cortex-a76": ("0x4", "0xd0b", "1", "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
                                        "asimdrdm lrcpc dcpop asimddp"),
}
ARMV80 = ("cortex-a53", "cortex-a72")
TIMEOUT = 900  # emulation runs the demo bundle 35-400x slower than this host


@pytest.fixture(scope="module")
def sysroot():
    if not (SYSROOT / "usr" / "bin" / "python3").exists():
        pytest.fail(f"no arm64 sysroot at {SYSROOT}: run `make test-arm` (or tests/arm/make_sysroot.sh DIR)")
    return SYSROOT


def _cpuinfo(cpu: str) -> str:
    variant, part, revision, features = CPUS[cpu]
    core = (f"BogoMIPS\t: 108.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
            f"CPU variant\t: {variant}\nCPU part\t: {part}\nCPU revision\t: {revision}\n\n")
    return "".join(f"processor\t: {i}\n{core}" for i in range(2))


def emulate(root: Path, cpu: str, args: list[str], cache: Path, **env) -> subprocess.CompletedProcess:
    """Run the sysroot's python3 on `cpu`. QEMU (`-L`) looks every absolute path up in the sysroot
    first, so it finds the core's /proc/cpuinfo there (written before each run; runs are sequential),
    and host paths (the checkout, bundles under /tmp) wherever the sysroot has no such file."""
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc" / "cpuinfo").write_text(_cpuinfo(cpu))
    environment = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "FLORENCE_EDGE_CACHE": str(cache),
                   "HOME": str(cache), "LANG": "C.UTF-8", **env}
    return subprocess.run(["qemu-aarch64-static", "-L", str(root), "-cpu", cpu, str(root / "usr/bin/python3"), *args],
                          capture_output=True, text=True, timeout=TIMEOUT, env=environment)


def _emulated_cases(roots, cpu, bundle, beams, cache):
    proc = emulate(roots, cpu, [str(REPO / "tests" / "arm" / "drive.py"), str(bundle), beams], cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _x86_cases(bundle, beams):
    return json.loads(json.dumps(drive.cases(str(bundle), [int(n) for n in beams.split(",")])))


@pytest.fixture(scope="module")
def configs(demo_fp32_bundle, demo_int8_bundle, demo_int8_static_bundle):
    """name -> (bundle, beams, this host's results): fp32 greedy and beam, int8 and int8-static greedy."""
    wanted = {"fp32": (demo_fp32_bundle[0], "1,3"), "int8": (demo_int8_bundle[0], "1"),
              "int8-static": (demo_int8_static_bundle[0], "1")}
    return {name: (bundle, beams, _x86_cases(bundle, beams)) for name, (bundle, beams) in wanted.items()}


@pytest.mark.parametrize("cpu", CPUS)
def test_every_core_gives_the_tokens_and_results_of_x86(cpu, sysroot, configs, tmp_path):
    for name, (bundle, beams, expected) in configs.items():
        got = _emulated_cases(sysroot, cpu, bundle, beams, tmp_path / name)
        assert got["runtime"] == ("interpreter" if cpu in ARMV80 else "compiled")
        assert len(got["results"]) == len(expected["results"]) > 0
        for ours, theirs in zip(got["results"], expected["results"]):
            assert ours == theirs, f"{cpu} {name}: {ours[:3]} differs from x86"


def _cli(bundle):
    return ["-m", "edge.cli", "run", "-m", str(bundle), "-i", str(drive.SAMPLES / "shapes-1.png"),
            "-t", "CAPTION", "-t", "OD", "--beams", "1", "--json", "--threads", "2"]


def _without_timings(stdout: str) -> tuple[list[dict], list[float]]:
    """The lines without their timings and scores, and the scores apart: int8 kernels differ by CPU, so
    the probabilities the scores come from move a little where the tokens do not."""
    lines = [json.loads(line) for line in stdout.splitlines()]
    scores = []
    for line in lines:
        line.pop("timings")
        scores += [line.pop("score")] + [v for values in line.pop("scores").values() for v in values]
    return lines, scores


@pytest.mark.parametrize("cpu", CPUS)
def test_the_cli_runs_and_prints_nothing_from_the_native_library(cpu, sysroot, demo_int8_bundle, tmp_path):
    bundle = demo_int8_bundle[0]
    x86 = subprocess.run([sys.executable, *_cli(bundle)], capture_output=True, text=True, check=True,
                         env={**os.environ, "FLORENCE_EDGE_CACHE": str(tmp_path / "x86")})
    proc = emulate(sysroot, cpu, _cli(bundle), tmp_path / cpu)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-3000:]
    (arm, arm_scores), (ours, our_scores) = _without_timings(proc.stdout), _without_timings(x86.stdout)
    assert arm == ours and len(arm_scores) == len(our_scores)
    assert max(abs(a - b) for a, b in zip(arm_scores, our_scores)) < 0.02


@pytest.mark.parametrize("cpu", ARMV80)
def test_the_compiled_runtime_is_refused_on_armv8_0_in_one_line(cpu, sysroot, demo_int8_bundle, tmp_path):
    proc = emulate(sysroot, cpu, _cli(demo_int8_bundle[0]), tmp_path, FLORENCE_EDGE_RUNTIME="compiled")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0
    assert "libLiteRtWebGpuAccelerator.so" in proc.stderr and "lse" in proc.stderr


def test_int4_gives_the_results_of_x86_on_the_a76_and_is_refused_on_the_a72(sysroot, demo_int4_bundle, tmp_path):
    """XNNPACK's int4 kernels differ by CPU (NEON dot product on the A76, AVX-512 here); the A72 takes
    the interpreter, which refuses int4."""
    bundle = demo_int4_bundle[0]
    got = _emulated_cases(sysroot, "cortex-a76", bundle, "1", tmp_path / "a76")
    assert got["runtime"] == "compiled"
    assert got["results"] == _x86_cases(bundle, "1")["results"]
    proc = emulate(sysroot, "cortex-a72", _cli(bundle), tmp_path / "a72")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "int4 weights need the compiled runtime" in proc.stderr


@pytest.mark.parametrize("cpu", CPUS)
def test_the_self_test_passes_on_every_core_for_int8_and_int4(cpu, sysroot, demo_int8_bundle, demo_int4_bundle,
                                                              tmp_path):
    """The probe was recorded on x86 (AVX-512 VNNI); the ARM kernels round int8 otherwise, within what
    the probe lets move. int4 runs on the compiled path only (the A76)."""
    bundles = [demo_int8_bundle[0]] + ([] if cpu in ARMV80 else [demo_int4_bundle[0]])
    for bundle in bundles:
        proc = emulate(sysroot, cpu, ["-m", "edge.cli", "check", str(bundle), "--run"], tmp_path / bundle.name)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "the probe answered as at conversion" in proc.stdout, proc.stdout


def test_a_native_crash_shows_its_last_words_and_the_file(sysroot, demo_int8_bundle, tmp_path):
    """What the A72 did before the runtime chose by CPU: its accelerator plugin aborts the process."""
    graph = demo_int8_bundle[0] / "vision.tflite"
    code = f"from edge.runtime import CompiledGraph; CompiledGraph({str(graph)!r}, 1, None)"
    proc = emulate(sysroot, "cortex-a72", ["-c", code], tmp_path)
    assert proc.returncode == -4  # SIGILL, as without our handler
    assert "compiled with lse enabled, but this feature is not available" in proc.stderr
    assert f"died of SIGILL while loading {graph}" in proc.stderr


def _digests(folder: Path) -> dict:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.glob("*.xnnpack"))}


def test_a_weight_cache_from_another_cpu_is_repacked_not_trusted(sysroot, configs, tmp_path):
    """A copied SD card or a shared folder: packed weights written on x86 meet an A76, then an A72."""
    bundle, _, expected = configs["int8"]
    cache = tmp_path / "cache"
    cache.mkdir()
    x86 = subprocess.run([sys.executable, str(REPO / "tests" / "arm" / "drive.py"), str(bundle), "1"], check=True,
                         capture_output=True, text=True, env={**os.environ, "FLORENCE_EDGE_CACHE": str(cache)})
    assert json.loads(x86.stdout) == expected
    written_on_x86 = _digests(cache)
    assert len(written_on_x86) == 3

    a76 = _emulated_cases(sysroot, "cortex-a76", bundle, "1", cache)
    assert a76["results"] == expected["results"]
    repacked = _digests(cache)
    assert repacked.keys() == written_on_x86.keys()
    assert all(repacked[name] != written_on_x86[name] for name in repacked)  # XNNPACK saw a foreign build

    again = _emulated_cases(sysroot, "cortex-a76", bundle, "1", cache)
    assert again["results"] == expected["results"] and _digests(cache) == repacked  # now it is reused

    shutil.copytree(cache, tmp_path / "copied")
    a72 = _emulated_cases(sysroot, "cortex-a72", bundle, "1", tmp_path / "copied")
    assert a72["results"] == expected["results"] and _digests(tmp_path / "copied") == repacked


def test_the_plugin_needs_what_the_runtime_expects(sysroot, tmp_path):
    """The aarch64 wheel's accelerator plugin names features edge.cpu knows by their kernel names."""
    code = ("from edge import runtime, cpu; from edge.runtime import _FAIL_FAST; import re; "
            "data = b''.join(p.read_bytes() for p in runtime._accelerator_libraries()); "
            "needs = sorted({m.decode() for m in re.findall(_FAIL_FAST + rb'([\\w.]+) enabled', data)}); "
            "print(needs, cpu.missing(needs), runtime.compiled_runtime_blockers())")
    a76 = emulate(sysroot, "cortex-a76", ["-c", code], tmp_path)
    a53 = emulate(sysroot, "cortex-a53", ["-c", code], tmp_path)
    assert a76.stdout.strip() == "['aes', 'crc', 'dotprod', 'fp16', 'lse', 'rcpc', 'rdm', 'sha2'] [] ('', '')"
    assert a53.stdout.strip().endswith(
        "['dotprod', 'fp16', 'lse', 'rcpc', 'rdm'] ('libLiteRtWebGpuAccelerator.so', 'dotprod, fp16, lse, rcpc, rdm')")

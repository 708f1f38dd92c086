"""The host CPU: its architecture and the instruction-set features Linux reports for it.

Read before any native library runs, so the runtime can keep a library built for newer
cores (ARMv8.2's dot product, LSE atomics ...) away from a Cortex-A53/A72, where loading it
kills the process with SIGILL.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import math
import os
import platform
import re
import sys
from pathlib import Path

_AT_HWCAP, _AT_HWCAP2 = 16, 26
# Bit numbers from linux/arch/arm64/include/uapi/asm/hwcap.h; names as /proc/cpuinfo prints them.
_ARM64_HWCAP = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma "
                "lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg")
_ARM64_HWCAP2 = ("dcpodp sve2 sveaes svepmull svebitperm svesha3 svesm4 flagm2 frint svei8mm svef32mm svef64mm "
                 "svebf16 i8mm bf16 dgh rng bti")

# Compilers name some features differently from the kernel (-march=...+lse is "atomics").
_COMPILER_TO_KERNEL = {
    "lse": ("atomics",), "crc": ("crc32",), "dotprod": ("asimddp",), "fp16": ("fphp", "asimdhp"),
    "rdm": ("asimdrdm",), "rcpc": ("lrcpc",), "sse3": ("pni",), "pclmul": ("pclmulqdq",), "bmi": ("bmi1",),
    "cmpxchg16b": ("cx16",),
}


def machine() -> str:
    """The architecture this Python runs as: 'aarch64', 'x86_64', or 'armv7l' for a 32-bit
    userland on a 64-bit ARM kernel (where `uname -m` still says aarch64)."""
    arch = platform.machine().lower()
    if arch in ("aarch64", "arm64") and sys.maxsize < 2**32:
        return "armv7l"
    return "aarch64" if arch == "arm64" else arch


def platform_problem() -> str | None:
    """Why no runtime can run here, said before anything imports numpy or LiteRT; else None."""
    if not machine().startswith("arm"):
        return None
    if any(importlib.util.find_spec(m) for m in ("ai_edge_litert", "tflite_runtime")):
        return None
    return (f"florence-edge needs a 64-bit OS: this Python is 32-bit ARM ({machine()}), for which LiteRT has no "
            "runtime; install 64-bit Raspberry Pi OS (check: `getconf LONG_BIT` prints 64)")


@functools.lru_cache(maxsize=1)
def features() -> frozenset:
    """The CPU's feature names as /proc/cpuinfo spells them (empty if the OS does not say)."""
    if machine() == "aarch64" and sys.platform.startswith("linux"):
        caps = _hwcaps()
        if caps:
            return caps
    return _cpuinfo_features()


def _hwcaps() -> frozenset:
    # getauxval is what the libraries themselves ask; /proc/cpuinfo may be absent in containers.
    try:
        getauxval = ctypes.CDLL(None).getauxval
    except (OSError, AttributeError):
        return frozenset()
    getauxval.restype = ctypes.c_ulong
    getauxval.argtypes = [ctypes.c_ulong]
    names = set()
    for key, table in ((_AT_HWCAP, _ARM64_HWCAP), (_AT_HWCAP2, _ARM64_HWCAP2)):
        bits = getauxval(key)
        names.update(name for bit, name in enumerate(table.split()) if bits >> bit & 1)
    return frozenset(names)


def _cpuinfo(path: str = "/proc/cpuinfo") -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _cpuinfo_features(path: str = "/proc/cpuinfo") -> frozenset:
    match = re.search(r"^(?:Features|flags)\s*:(.*)$", _cpuinfo(path), re.MULTILINE)
    return frozenset(match.group(1).split()) if match else frozenset()


def name() -> str:
    """The CPU's model name as the OS gives it, for benchmark reports."""
    match = re.search(r"^(?:model name|hardware|cpu model)\s*:(.*)$", _cpuinfo(), re.MULTILINE | re.IGNORECASE)
    return match.group(1).strip() if match else platform.processor() or platform.machine()


def missing(compiler_names) -> list[str]:
    """Which of these compiler feature names (as in -march=armv8.2-a+dotprod, or -mavx) this CPU lacks.
    A name the table does not know counts as missing: better a slower path than SIGILL."""
    have = features()
    return sorted(n for n in compiler_names
                  if not all(k in have for k in _COMPILER_TO_KERNEL.get(n, (n.replace(".", "_"),))))


def usable_cpus(cgroup: str = "/sys/fs/cgroup/cpu.max") -> int:
    """The CPUs this process may run on: its affinity, capped by a cgroup v2 CPU quota (a systemd
    CPUQuota=, a container's --cpus). More threads than that only wait for each other."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    try:
        quota, period = Path(cgroup).read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count


# Multiply-adds per cycle and core of the widest kernels XNNPACK has for an instruction set, the
# first feature present deciding; nominal, one dot-product or FMA pipe where cores differ (Intel's
# server cores and Zen 5 issue two 512-bit ones, Zen 4 one; the Cortex-A76 two 128-bit SDOTs).
# int8 without dot products widens to int16 (AVX2's vpmaddwd, NEON's smlal): half the rate.
_INT8_MACS_PER_CYCLE = (("avx512_vnni", 64), ("avx_vnni", 32), ("avx2", 32), ("i8mm", 64), ("asimddp", 32),
                        ("asimd", 16))
_FP32_MACS_PER_CYCLE = (("avx512f", 32), ("fma", 16), ("asimd", 8))


def clock_ghz(cpufreq: str = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") -> float | None:
    """The cores' top clock, from cpufreq or /proc/cpuinfo; None where neither says (virtual machines)."""
    try:
        return int(Path(cpufreq).read_text()) / 1e6
    except (OSError, ValueError):
        match = re.search(r"^cpu MHz\s*:\s*([\d.]+)", _cpuinfo(), re.MULTILINE)
        return float(match.group(1)) / 1e3 if match else None


def peak_gmacs(threads: int, ghz: float | None = None) -> dict:
    """Nominal int8 and fp32 multiply-adds per second (G) for `threads` cores at `ghz` (default: the
    clock this machine reports); {} without a clock. See _INT8_MACS_PER_CYCLE for what is assumed."""
    ghz = ghz or clock_ghz()
    if not ghz:
        return {}
    have = features()
    rate = {kind: next((n for feature, n in table if feature in have), None)
            for kind, table in (("int8", _INT8_MACS_PER_CYCLE), ("fp32", _FP32_MACS_PER_CYCLE))}
    return {kind: threads * ghz * n for kind, n in rate.items() if n}

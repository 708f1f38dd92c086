"""Process memory: this process' peak, the heap and file pages it can hand back, and what this
machine can still give it (`edge.bundle_memory` measures what a bundle needs)."""

from __future__ import annotations

import ctypes
import functools
import resource
from pathlib import Path


def give_back_freed_memory() -> None:
    """Have the C allocator return freed memory to the system (glibc's malloc_trim): a closed graph's
    blocks otherwise stay in the process' heaps, counted in its RSS (low-memory mode, base: a peak of
    467-487 MB over four frames without it, 376 MB with it)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; musl and macOS have none
    except (OSError, AttributeError):
        return None


_MADV_DONTNEED = 4


def drop_file_pages(path) -> float:
    """Let go of the pages this process has read from `path` through its read-only mappings of it
    (madvise MADV_DONTNEED; Linux), returning the MB they span. A graph file's weights are read once,
    when XNNPACK packs them; the pages then stayed counted in the process' RSS (the interpreter path,
    base int8: 107 MB of 474 after loading). A page read again later is read again from the file, so
    nothing changes but the memory; writable mappings are left alone."""
    target = str(Path(path).resolve())
    madvise = _madvise()
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return 0.0
    spanned = 0
    for line in maps:
        fields = line.split(maxsplit=5)
        if madvise is None or len(fields) < 6 or fields[5] != target or "w" in fields[1]:
            continue
        start, end = (int(n, 16) for n in fields[0].split("-"))
        if madvise(start, end - start, _MADV_DONTNEED) == 0:
            spanned += end - start
    return spanned / 2**20


@functools.lru_cache(maxsize=1)
def _madvise():
    try:
        madvise = ctypes.CDLL(None).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return madvise


def reset_peak_rss() -> None:
    """Start VmHWM again from the current RSS (Linux); elsewhere the peak stays the process'."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """This process' peak resident memory: VmHWM where Linux has it (ru_maxrss survives exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def available_mb() -> tuple[float, str] | None:
    """The memory this process could still take, MB, and what limits it: the smaller of the
    system's MemAvailable and room left under its cgroup's memory.max (a service's MemoryMax)."""
    candidates = []
    meminfo = _meminfo()
    if "MemAvailable" in meminfo:
        candidates.append((meminfo["MemAvailable"] / 1024, "available on this machine (MemAvailable)"))
    cgroup = _cgroup_room()
    if cgroup is not None:
        candidates.append((cgroup, "left under this service's memory.max"))
    return min(candidates) if candidates else None


def total_mb() -> float | None:
    total = _meminfo().get("MemTotal")
    return total / 1024 if total else None


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in kB."""
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return {}
    return {name: int(rest.split()[0]) for name, _, rest in (line.partition(":") for line in lines) if rest.strip()}


def _cgroup_room() -> float | None:
    """MB between this process' cgroup v2 memory.current and memory.max; None when unlimited."""
    try:
        entry = Path("/proc/self/cgroup").read_text().splitlines()
        path = next(line.split(":", 2)[2] for line in entry if line.startswith("0::"))
        folder = Path("/sys/fs/cgroup") / path.lstrip("/")
        limit = (folder / "memory.max").read_text().strip()
        current = int((folder / "memory.current").read_text())
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return None if limit == "max" else (int(limit) - current) / 2**20

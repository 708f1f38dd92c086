"""edge.cpu: the host's architecture and features, as the runtime path is chosen from them."""

import sys

import pytest

from edge import cpu, runtime
from edge.cli import main

PI4 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU part\t: 0xd08
"""


@pytest.fixture
def host(monkeypatch):
    """Pretend to be another CPU: its feature names."""
    def pretend(names):
        cpu.features.cache_clear()
        runtime.compiled_runtime_blockers.cache_clear()
        monkeypatch.setattr(cpu, "features", lambda: frozenset(names))

    yield pretend
    runtime.compiled_runtime_blockers.cache_clear()


def test_cpuinfo_features_are_read_in_arm_and_x86_format(tmp_path):
    arm = tmp_path / "arm"
    arm.write_text(PI4)
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 pni cx16 avx2\n")
    assert cpu._cpuinfo_features(str(arm)) == {"fp", "asimd", "evtstrm", "crc32", "cpuid"}
    assert cpu._cpuinfo_features(str(x86)) == {"fpu", "sse", "sse2", "pni", "cx16", "avx2"}
    assert cpu._cpuinfo_features(str(tmp_path / "missing")) == frozenset()


def test_compiler_feature_names_are_matched_to_the_kernels(host):
    host({"fp", "asimd", "crc32", "aes", "sha2", "pni", "cx16", "sse4_1"})
    assert cpu.missing(["lse", "crc", "dotprod", "fp16", "sha2", "aes"]) == ["dotprod", "fp16", "lse"]
    assert cpu.missing(["sse3", "cmpxchg16b", "sse4.1"]) == []
    assert cpu.missing(["a-feature-nobody-named"]) == ["a-feature-nobody-named"]  # unknown: not trusted


def test_this_host_can_load_the_installed_plugin():
    """Every feature the installed accelerator plugin names is one edge.cpu can look up here
    (a name it spelt wrongly once refused the compiled path on this very machine)."""
    assert runtime._accelerator_libraries()
    assert runtime.compiled_runtime_blockers() == ("", "")
    assert runtime.select_runtime() == "compiled"


def test_an_armv8_0_core_takes_the_interpreter_and_refuses_the_compiled_path(host, monkeypatch):
    monkeypatch.delenv("FLORENCE_EDGE_RUNTIME", raising=False)
    host({"fp", "asimd", "crc32", "cpuid", "sse", "sse2"})  # a Pi 4, as far as the plugin can tell
    lib, lacking = runtime.compiled_runtime_blockers()
    assert lib.startswith("libLiteRt") and lacking
    assert runtime.select_runtime() == "interpreter"
    with pytest.raises(runtime.FlorenceEdgeError, match="built for CPU features this CPU lacks"):
        runtime.select_runtime("compiled")
    monkeypatch.setenv("FLORENCE_EDGE_RUNTIME", "fastest")
    with pytest.raises(runtime.FlorenceEdgeError, match="unknown runtime 'fastest'"):
        runtime.select_runtime()


def test_an_int4_bundle_is_refused_off_the_compiled_path_saying_why(host, monkeypatch):
    monkeypatch.delenv("FLORENCE_EDGE_RUNTIME", raising=False)
    assert runtime.select_runtime(None, "int4") == "compiled"
    assert runtime.runtimes_for("int4") == ("compiled",) and runtime.runtimes_for("int8") == runtime.RUNTIMES
    with pytest.raises(runtime.FlorenceEdgeError, match="need the compiled runtime, and the interpreter was asked for"):
        runtime.select_runtime("interpreter", "int4")
    host({"fp", "asimd", "crc32", "cpuid", "sse", "sse2"})
    refused = r"this CPU takes the interpreter \(libLiteRt.* needs .*--quant int8"
    with pytest.raises(runtime.FlorenceEdgeError, match=refused):
        runtime.select_runtime(None, "int4")
    assert runtime.select_runtime(None, "int8") == "interpreter"


def test_a_cpu_that_says_nothing_keeps_the_compiled_path(host):
    host(())
    assert runtime.compiled_runtime_blockers() == ("", "")


def test_32_bit_arm_is_told_to_install_a_64_bit_os(monkeypatch, capsys):
    monkeypatch.setattr(cpu.platform, "machine", lambda: "aarch64")  # a 64-bit kernel says so...
    monkeypatch.setattr(sys, "maxsize", 2**31 - 1)  # ...under a 32-bit userland
    assert cpu.machine() == "armv7l"
    monkeypatch.setattr(cpu.importlib.util, "find_spec", lambda name: None)  # no wheel installed there
    assert main(["run", "-m", "b", "-i", "x.png", "-t", "OD"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a 64-bit OS" in err and "getconf LONG_BIT" in err


def test_threads_default_to_the_cpus_this_process_may_use(tmp_path, monkeypatch):
    import os

    allowed = len(os.sched_getaffinity(0))
    quota = tmp_path / "cpu.max"
    assert cpu.usable_cpus(str(tmp_path / "no-cgroup")) == allowed
    quota.write_text("max 100000\n")
    assert cpu.usable_cpus(str(quota)) == allowed
    quota.write_text("50000 100000\n")  # systemd CPUQuota=50%
    assert cpu.usable_cpus(str(quota)) == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    quota.write_text("250000 100000\n")  # docker --cpus 2.5
    assert cpu.usable_cpus(str(quota)) == 3


@pytest.mark.parametrize("threads", ["0", "-2"])
def test_threads_below_one_are_refused_in_one_line(threads, fp32_bundle, capsys):
    assert main(["run", "-m", str(fp32_bundle[0]), "-i", "samples/shapes-1.png", "-t", "OD",
                 "--threads", threads]) == 2
    assert "num_threads must be a whole number of at least 1" in capsys.readouterr().err
    assert main(["bench", "-m", str(fp32_bundle[0]), "--threads", "2", threads]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err


def test_the_nominal_peak_follows_the_instruction_set_and_the_clock(monkeypatch, tmp_path):
    def cores(*names):
        monkeypatch.setattr(cpu, "features", lambda: frozenset(names))

    cores("fp", "asimd", "asimddp")  # a Cortex-A76: int8 by dot product
    assert cpu.peak_gmacs(4, ghz=2.4) == {"int8": 4 * 2.4 * 32, "fp32": 4 * 2.4 * 8}
    cores("fp", "asimd")  # a Cortex-A72: no dot product, int8 widened to int16
    assert cpu.peak_gmacs(4, ghz=1.8)["int8"] == 4 * 1.8 * 16
    cores("avx2", "fma", "avx512f", "avx512_vnni")
    assert cpu.peak_gmacs(2, ghz=3.0) == {"int8": 2 * 3.0 * 64, "fp32": 2 * 3.0 * 32}
    frequency = tmp_path / "cpuinfo_max_freq"
    frequency.write_text("2400000\n")  # kHz, as cpufreq gives it
    assert cpu.clock_ghz(str(frequency)) == 2.4


def test_without_a_clock_there_is_no_peak(monkeypatch):
    monkeypatch.setattr(cpu, "features", lambda: frozenset({"avx2", "fma"}))
    monkeypatch.setattr(cpu, "clock_ghz", lambda: None)
    assert cpu.peak_gmacs(2) == {}

"""Silence for noisy native libraries (converters, runtimes), keeping their output for when they fail or die."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import tempfile
import warnings

# Faults a native library dies of: the process never returns to Python, so no `finally` runs.
_FATAL = (signal.SIGSEGV, signal.SIGILL, signal.SIGBUS, signal.SIGFPE, signal.SIGABRT)
_TAIL = 8000  # bytes of held log shown, on failure or death
_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_int)
_libc_signal = None


def _signal_function():
    global _libc_signal
    if _libc_signal is None:
        _libc_signal = ctypes.CDLL(None).signal
        _libc_signal.restype = ctypes.c_void_p
        _libc_signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
    return _libc_signal


@contextlib.contextmanager
def quiet(doing: str | None = None, show_on_failure: bool = True):
    """Hold native libraries' log lines (many written by C++ straight to fd 1/2); show them only on failure.

    If a native library kills the process meanwhile (SIGSEGV, SIGILL, abort ...), the held lines and
    one line naming `doing` (e.g. "loading vision.tflite") still reach the real stderr. With
    `show_on_failure=False` a failure's held lines go with its exception instead (`held_log`), for a
    caller that writes them to a log file.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        text = open(log.fileno(), "w", buffering=1, closefd=False)  # lines reach the log before a crash
        failure = None
        try:
            with (_last_words(log.fileno(), saved[1], doing), warnings.catch_warnings(),
                  contextlib.redirect_stdout(text), contextlib.redirect_stderr(text)):
                warnings.simplefilter("ignore")
                yield
        except BaseException as exc:
            failure = exc
            raise
        finally:
            text.flush()
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
            if failure is not None:
                log.seek(0)
                held = log.read().decode(errors="replace")
                if show_on_failure:
                    sys.stderr.write(held[-_TAIL:])
                else:
                    failure.held_log = getattr(failure, "held_log", "") + held


@contextlib.contextmanager
def _last_words(log_fd: int, stderr_fd: int, doing: str | None):
    """While active, a fatal signal first copies the held log's tail and a line of ours to `stderr_fd`,
    then the process dies of that same signal (exit status unchanged).

    The handler runs Python on the faulting thread: it touches only memory allocated here and two
    system calls, and restores the default action first, so a second fault ends the process at once.
    """
    tail = bytearray(_TAIL)
    what = f" while {doing}" if doing else ""

    def on_fatal(signum: int) -> None:
        for sig in _FATAL:
            set_handler(sig, 0)  # SIG_DFL
        start = max(0, os.fstat(log_fd).st_size - _TAIL)
        size = os.preadv(log_fd, [tail], start)
        os.write(stderr_fd, bytes(tail[:size]))
        os.write(stderr_fd, f"\nflorence-edge: a native library died of {signal.Signals(signum).name}{what}; "
                            "its last lines are above\n".encode())
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])  # blocked while its handler runs
        os.kill(os.getpid(), signum)  # the default action now: die of it, as without this handler

    set_handler = _signal_function()
    handler = _HANDLER(on_fatal)
    previous = {sig: set_handler(sig, ctypes.cast(handler, ctypes.c_void_p)) for sig in _FATAL}
    try:
        yield
    finally:
        for sig, old in previous.items():
            set_handler(sig, old)

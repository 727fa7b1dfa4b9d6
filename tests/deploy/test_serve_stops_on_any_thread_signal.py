"""``hub serve`` stops on SIGTERM whichever of its threads the kernel hands the signal to.

A process-wide signal goes to any thread that does not block it, and the gateway runs several
(the event loop, grpc's own, the ledger's). Python runs the handler on the main thread only when
that thread next wakes, so a main thread parked in a wait without a timeout never saw a SIGTERM
delivered elsewhere: the crash drill's final stop hung for its whole 60 s timeout once. This
sends SIGTERM to one non-main thread (tgkill) and expects a clean exit."""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_SYS_TGKILL = 234  # x86_64


@pytest.mark.skipif(sys.platform != "linux" or os.uname().machine != "x86_64", reason="tgkill numbering is x86_64 Linux's")
def test_sigterm_to_a_non_main_thread_stops_the_hub(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "hub", "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            if re.search(r"hub serving on", line) or time.monotonic() > deadline:
                break
        threads = [int(t) for t in os.listdir(f"/proc/{proc.pid}/task") if int(t) != proc.pid]
        assert threads, "the hub runs more than its main thread"
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.syscall(_SYS_TGKILL, proc.pid, threads[-1], signal.SIGTERM) == 0, ctypes.get_errno()
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

"""Peak memory of this process: resident set (``ru_maxrss``) and anonymous (private) memory.

``ru_maxrss`` counts every resident page, including file-backed ones: shared-library code and the
page cache of files the process has mapped. Those pages are the kernel's to drop under pressure,
and how many of them are resident depends on what else recently touched the same files (a freshly
installed virtualenv or freshly written output maps far more than an old one, so the same run
reports different peaks). Anonymous memory (``RssAnon``
in ``/proc/self/status``: heap, NumPy and Arrow buffers, thread stacks) is what a process really
claims, so ``--memory-limit`` bounds that, and :class:`PeakMemory` measures its peak by sampling.
"""
from __future__ import annotations

import resource
import threading
from pathlib import Path
from typing import Optional

_STATUS = Path("/proc/self/status")


def rss_anon_bytes() -> Optional[int]:
    """Current anonymous resident memory of this process in bytes (None where /proc is not there)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_rss_bytes() -> int:
    """Peak resident set size of this process in bytes (anonymous and file-backed pages)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class PeakMemory:
    """Samples :func:`rss_anon_bytes` every ``interval_s`` seconds in a daemon thread; ``peak_anon`` is the largest.

    Use as a context manager (or ``start()`` / ``stop()``). Sampling misses peaks shorter than the
    interval; the default 5 ms is short next to any stage that allocates hundreds of MB.
    """

    def __init__(self, interval_s: float = 0.005):
        self.interval_s = interval_s
        self.peak_anon = rss_anon_bytes() or 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = rss_anon_bytes()
            if now is None:
                return
            self.peak_anon = max(self.peak_anon, now)

    def start(self) -> "PeakMemory":
        self._thread = threading.Thread(target=self._run, name="graphtrain-peak-memory", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_anon = max(self.peak_anon, rss_anon_bytes() or 0)
        return self.peak_anon

    def __enter__(self) -> "PeakMemory":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

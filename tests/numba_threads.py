"""Call a function under explicit Numba thread counts, in a fresh interpreter.

``numba.set_num_threads(n)`` cannot go above ``NUMBA_NUM_THREADS``, which is read once when Numba
is imported and defaults to the number of cores: on a one-core runner, "1 thread against
``NUMBA_NUM_THREADS``" is 1 against 1 and a thread-count test checks nothing. Changing the variable
after import does not help (the next compile fails once the thread pool runs), so
:func:`results_at_thread_counts` starts a child interpreter with ``NUMBA_NUM_THREADS`` set to the
largest count asked for, sets each count with ``numba.set_num_threads`` (checked with
``get_num_threads``) and calls the function; more threads than cores still split the work
differently, which is what the tests are after.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Sequence

REPO = Path(__file__).resolve().parents[1]


def results_at_thread_counts(target: str, counts: Sequence[int] = (1, 4), timeout: float = 300.0) -> Dict[int, Any]:
    """``{n: func()}`` for each thread count ``n``, where ``target`` is ``"module:func"`` (a module-level
    function of no arguments whose result pickles), called in one child interpreter."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.pkl"
        env = dict(os.environ, NUMBA_NUM_THREADS=str(max(counts)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        proc = subprocess.run([sys.executable, "-m", "tests.numba_threads", target, str(out), *map(str, counts)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"{target} at {list(counts)} Numba threads failed:\n{proc.stderr}"
        return pickle.loads(out.read_bytes())


def _main(target: str, out: str, counts: Sequence[int]) -> None:
    import importlib

    import numba

    module, name = target.split(":")
    func = getattr(importlib.import_module(module), name)
    results = {}
    for n in counts:
        numba.set_num_threads(n)
        assert numba.get_num_threads() == n, (n, numba.get_num_threads())
        results[n] = func()
    Path(out).write_bytes(pickle.dumps(results))


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2], [int(c) for c in sys.argv[3:]])

"""The environment of the tests that run the CLI in a child process with almost nothing inherited."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict

REPO = Path(__file__).resolve().parents[1]


def minimal_env() -> Dict[str, str]:
    """The repository on ``PYTHONPATH`` and a ``PATH`` of this interpreter's directories (its venv's ``bin``
    and the real interpreter's) before ``/usr/bin:/bin``: the child finds the same Python and tools wherever
    Python is installed, not whatever ``/usr/bin`` holds."""
    exe = Path(sys.executable)
    dirs = [exe.parent, exe.resolve().parent, Path(sys.prefix) / "bin", "/usr/bin", "/bin"]
    return {"PYTHONPATH": str(REPO), "PATH": os.pathsep.join(dict.fromkeys(str(d) for d in dirs))}

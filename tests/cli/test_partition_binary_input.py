"""Binary or undecodable input to `graphtrain partition`: one clear line naming the file (and the
line), bytes escaped, exit 2, no traceback, no "Exception ignored" report, nothing written."""
import gzip
import subprocess
import sys

import numpy as np
import pytest

CASES = {
    # random bytes with NULs: refused by the sniff of the first 64 KiB
    "random.csv": lambda rs: rs.integers(0, 256, 3000, dtype=np.uint8).tobytes(),
    # random bytes without NULs: pyarrow's row handler cannot decode the invalid row
    "random-no-nul.csv": lambda rs: bytes(b for b in rs.integers(1, 256, 3000, dtype=np.uint8).tobytes()),
    # a valid file with binary junk after 2,000 good lines
    "junk-tail.csv": lambda rs: b"src,dst\n" + b"".join(b"%d,%d\n" % (i, i + 1) for i in range(2000))
    + rs.integers(1, 256, 2000, dtype=np.uint8).tobytes(),
    # gzip-compressed random bytes: sniffed after decompression
    "random.csv.gz": lambda rs: gzip.compress(rs.integers(0, 256, 3000, dtype=np.uint8).tobytes()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_binary_input_is_refused_cleanly(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(CASES[name](np.random.default_rng(7)))
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "graphtrain.cli", "partition", str(path), "--out", str(out),
                          "--num-parts", "2"], capture_output=True, timeout=120)
    assert res.returncode == 2
    err = res.stderr.decode("utf-8")  # valid UTF-8 ...
    assert err.isascii() and all(c.isprintable() for c in err.rstrip("\n")), err  # ... one printable line, bytes escaped
    assert "Traceback" not in err and "Exception ignored" not in err
    assert err.startswith(f"graphtrain partition: error: {path}")
    if name == "junk-tail.csv":
        assert ", line 2002:" in err and "not valid UTF-8" in err
    if name.startswith("random.csv"):
        assert "binary data" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [path]  # nothing written, no staging left

import shutil

from graphtrain import _jit_cache


def test_cache_dir_follows_every_jitted_source(tmp_path, monkeypatch):
    pkg = tmp_path / "graphtrain"
    shutil.copytree(_jit_cache._PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(_jit_cache, "_PACKAGE", pkg)
    before = _jit_cache.source_digest()
    # a change to an inlined dependency (not the file that defines the cached kernels) changes the cache
    body = pkg / "kernels" / "hop_body.py"
    body.write_text(body.read_text() + "\n# changed\n")
    assert _jit_cache.source_digest() != before


def test_user_choice_of_cache_dir_is_kept(monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/else")
    _jit_cache.configure()
    import os

    assert os.environ["NUMBA_CACHE_DIR"] == "/somewhere/else"

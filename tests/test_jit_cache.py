"""graphtrain's Numba cache: keyed by every module with jitted code, found from the code itself,
and used for graphtrain's functions only."""
import importlib
import json
import inspect
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

from numba.core import caching
from numba.core.dispatcher import Dispatcher

import graphtrain
from graphtrain import _jit_cache


def _jitted_function_files():
    """Package-relative source files of every Numba dispatcher reachable from graphtrain's modules."""
    files = set()
    for info in pkgutil.walk_packages(graphtrain.__path__, "graphtrain."):
        if info.name.endswith(".__main__"):  # runs the CLI
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            py_func = getattr(obj, "py_func", None)  # CPU dispatchers and numba.cuda kernels alike
            if isinstance(obj, Dispatcher) or (py_func is not None and type(obj).__module__.startswith("numba")):
                path = Path(inspect.getfile(py_func)).resolve()
                if path.is_relative_to(_jit_cache._PACKAGE):
                    files.add(path.relative_to(_jit_cache._PACKAGE).as_posix())
    return files


def test_every_module_with_jitted_code_keys_the_cache():
    jitted = _jitted_function_files()
    sources = set(_jit_cache.jit_sources())
    # the inlined helpers the old hand-written list missed are among the modules found
    assert {"kernels/rows.py", "kernels/prefetch.py", "kernels/segments.py", "train/dropout.py",
            "kernels/hop_body.py", "kernels/rng.py", "kernels/cpu.py"} <= jitted
    assert jitted <= sources, f"jitted code in modules that do not key the cache: {sorted(jitted - sources)}"


def test_a_change_to_any_jitted_module_changes_the_cache_dir(tmp_path):
    pkg = tmp_path / "graphtrain"
    shutil.copytree(_jit_cache._PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    before = _jit_cache.source_digest(pkg)
    for rel in ("kernels/hop_body.py", "kernels/rows.py", "kernels/prefetch.py", "train/dropout.py"):
        path = pkg / rel
        original = path.read_bytes()
        path.write_bytes(original + b"\n# changed\n")  # an inlined dependency, not the file of the cached kernel
        assert _jit_cache.source_digest(pkg) != before, rel
        path.write_bytes(original)
    assert _jit_cache.source_digest(pkg) == before
    # a module that starts jitting joins the key
    (pkg / "newkernels.py").write_text("from numba import njit\n\n\n@njit(cache=True)\ndef f(x):\n    return x\n")
    assert "newkernels.py" in _jit_cache.jit_sources(pkg) and _jit_cache.source_digest(pkg) != before


def _locate(func):
    impl = caching.CompileResultCacheImpl(func)
    return impl.locator


def test_graphtrain_functions_cache_in_graphtrains_dir_and_others_do_not(tmp_path):
    from graphtrain.kernels import rows

    locator = _locate(rows._build_index.py_func)
    assert type(locator).__name__ == "GraphtrainCacheLocator"
    assert Path(locator.get_cache_path()).is_relative_to(_jit_cache.cache_dir())
    outside = tmp_path / "userlib.py"
    outside.write_text("def f(x):\n    return x + 1\n")
    spec = importlib.util.spec_from_file_location("userlib", outside)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    other = _locate(module.f)
    assert type(other).__name__ != "GraphtrainCacheLocator"
    assert not Path(other.get_cache_path()).is_relative_to(_jit_cache.cache_dir().parent)


def _in_fresh_python(code, **env):
    run_env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR",)}
    run_env.update(env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=run_env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


def test_import_leaves_numba_and_the_environment_alone():
    lines = _in_fresh_python(
        "import os, sys, graphtrain\n"
        "print('numba' in sys.modules, repr(os.environ.get('NUMBA_CACHE_DIR')))\n"
        "import numba.core.caching as c\n"
        "print(graphtrain._jit_cache.locator_classes(c)[0].__name__, repr(c.config.CACHE_DIR))\n")
    # numba is not imported by graphtrain's import; once it is, graphtrain's locator comes first and
    # Numba's own cache directory setting (other libraries' caches) is untouched
    assert lines == ["False None", "GraphtrainCacheLocator ''"]


def test_a_users_numba_cache_dir_is_respected(tmp_path):
    user = tmp_path / "my-numba-cache"
    lines = _in_fresh_python(
        "import os, graphtrain\n"
        "from graphtrain import _jit_cache\n"
        "print(os.environ['NUMBA_CACHE_DIR'])\n"
        "print(_jit_cache.cache_dir())\n", NUMBA_CACHE_DIR=str(user))
    assert lines[0] == str(user)  # not replaced
    assert Path(lines[1]).parent == user and Path(lines[1]).name.startswith("graphtrain-numba-")


def test_numba_imported_first_still_gets_the_locator():
    lines = _in_fresh_python(
        "import numba.core.caching as c\n"
        "import graphtrain\n"
        "print([k.__name__ for k in graphtrain._jit_cache.locator_classes(c)].count('GraphtrainCacheLocator'))\n"
        "graphtrain._jit_cache.configure()\n"
        "print([k.__name__ for k in graphtrain._jit_cache.locator_classes(c)].count('GraphtrainCacheLocator'))\n")
    assert lines == ["1", "1"]


_COMPILE_GATHER = (
    "import json, sys, time\n"
    "import numba\n"
    "import numpy as np\n"
    "import graphtrain\n"
    "from graphtrain import _jit_cache\n"
    "from graphtrain.kernels import cpu\n"
    "TABLE, ROWS = np.arange(5, dtype=np.int16), np.array([1, 3], dtype=np.int64)\n"
    "ARGS = tuple(numba.typeof(a) for a in (TABLE, ROWS, np.empty(2, np.int16)))  # _gather_1d(table, rows, out)\n"
    "def gather():\n"
    "    cpu.gather_rows(TABLE, ROWS)\n"
    "    stats = cpu._gather_1d.stats\n"
    "    print(json.dumps([sum(stats.cache_misses.values()), sum(stats.cache_hits.values())]), flush=True)\n")


def test_a_kernel_another_process_is_compiling_is_waited_for_and_loaded(tmp_path):
    """Two processes need one signature of a kernel on an empty cache: the second waits for the
    first's compile (it holds the kernel's compile lock), then loads it from the cache."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    holder = subprocess.Popen(
        [sys.executable, "-c", _COMPILE_GATHER +
         "with _jit_cache.compile_lock(cpu._gather_1d, ARGS):\n"
         "    print('locked', flush=True)\n"
         "    sys.stdin.readline()\n"  # the other process has started its compile
         "    time.sleep(1.0)\n"
         "    gather()\n"],  # compiles (the lock it holds is not taken again) and writes the cache
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        waiter = subprocess.Popen([sys.executable, "-c", _COMPILE_GATHER + "print('compiling', flush=True)\ngather()\n"],
                                  env=env, stdout=subprocess.PIPE, text=True)
        assert waiter.stdout.readline().strip() == "compiling"
        holder.stdin.write("go\n")
        holder.stdin.flush()
        waited = json.loads(waiter.stdout.readline())
        compiled = json.loads(holder.stdout.readline())
        assert waiter.wait(60) == 0 and holder.wait(60) == 0
    finally:
        holder.kill()
    assert compiled == [1, 0]  # the holder compiled the signature
    assert waited == [0, 1]  # the other loaded it from the cache: it had waited for the lock


def test_a_compile_of_another_librarys_function_takes_no_lock(tmp_path):
    lines = _in_fresh_python(
        "import graphtrain, numba\n"
        "from graphtrain import _jit_cache\n"
        "f = numba.njit(lambda x: x + 1)\n"
        "print(_jit_cache.lock_path(f), f(1))\n"
        "from graphtrain.kernels import cpu\n"
        "a, b = (_jit_cache.lock_path(cpu._gather_1d, (numba.int64[:],) * k) for k in (2, 3))\n"
        "print(a.endswith('.lock') and '.nbi.' in a, a != b)\n", NUMBA_CACHE_DIR=str(tmp_path))
    assert lines == ["None 2", "True True"]  # one lock per signature

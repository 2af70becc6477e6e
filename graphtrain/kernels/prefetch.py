"""Software prefetch for Numba CPU kernels: start a cache-line load early, with no effect on results.

Kernels that read random rows or segments of large (often memory-mapped) tables start the loads of
the entries a few iterations ahead, so several cache misses are in flight at once instead of one
per iteration (the sampling loop of :mod:`graphtrain.kernels.cpu`, the row copies of
:mod:`graphtrain.kernels.rows`).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

CACHE_LINE = 64  # bytes
AHEAD_ROWS = 8  # rows ahead that a row copy prefetches


@intrinsic
def prefetch(typingctx, arr, idx):
    """Hint the CPU to load ``arr[idx]`` (a 1-D array) into cache (LLVM ``llvm.prefetch``)."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        ary, ind = args
        aryty = signature.args[0]
        array = context.make_array(aryty)(context, builder, ary)
        ptr = cgutils.get_item_pointer(context, builder, aryty, array, [ind], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p, ir.IntType(32), ir.IntType(32), ir.IntType(32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        i32 = ir.IntType(32)
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def prefetch_row(flat, row, width):
    """Prefetch every cache line of row ``row`` of a C-contiguous ``[n, width]`` table whose 1-D
    view is ``flat`` (``width == 0``: nothing; see :func:`row_prefetch_args`)."""
    start = row * width
    step = max(1, CACHE_LINE // flat.itemsize)
    for c in range(0, width, step):
        prefetch(flat, start + c)


def row_prefetch_args(table: np.ndarray):
    """``(flat, width)`` for :func:`prefetch_row` on a 2-D table: its 1-D view and row width when it
    is C-contiguous; an empty array and 0 (no prefetch) otherwise -- a table is never copied."""
    if table.ndim == 2 and table.flags.c_contiguous:
        return table.reshape(-1), int(table.shape[1])
    return np.empty(0, dtype=table.dtype), 0

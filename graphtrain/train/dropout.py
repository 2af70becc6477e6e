"""Dropout of the shipped models: the per-step generator it draws from, and an opt-in fused CPU kernel.

**Randomness.** The training loop gives each optimizer step its own ``torch.Generator``, seeded
from ``(seed, rank, global_step)``, and runs the step's forward pass inside
:func:`step_randomness`; torch's global RNG is never reseeded. The models draw one key per dropout
layer from it before the layer runs (:func:`draw_layer_key`), and the layer draws its mask from a
generator on the tensor's device seeded with that key (:func:`keyed_relu_dropout`). A checkpoint's
position (``global_step``) therefore fixes every mask, and activation checkpointing -- which calls
the layer again in the backward pass, outside the step -- redraws the same mask from the same key.
Outside a step (a model used on its own) the keys come from torch's default CPU generator, so
``torch.manual_seed`` governs them. A user module that calls ``F.dropout`` draws from torch's
global RNG instead: it trains, but a resumed run does not redraw its masks.

**Default path.** ``keyed_relu_dropout`` is ``F.dropout(F.relu(x), p)``'s CPU algorithm with an
explicit generator: a ``bernoulli_(1 - p)`` mask divided by ``1 - p`` (on CPU, the same values as
``F.dropout`` after ``torch.manual_seed(key)``), on CPU and GPU alike.

**Fused CPU kernel** (``RuntimeConfig.fused_dropout``, off by default). :func:`dropout` and
:func:`relu_dropout` draw the mask with a Numba kernel from :func:`~graphtrain.kernels.rng.rand_u64`
(two 32-bit draws per 64-bit word) and apply it, with ReLU, in the same pass, where torch's CPU
``bernoulli_`` draws from an mt19937 generator one element at a time (the measured difference:
``benchmarks/RESULTS.md``, "Dropout kernel"). Semantics are ``F.dropout``'s: in training each
element is zeroed with probability ``p`` and the others are scaled by ``1 / (1 - p)``; gradients
flow through the kept elements with the same scale. Element ``i`` is kept when the 32-bit draw
``i`` of the call's stream is ``>= round(p * 2**32)``, so ``p`` is honoured to within ``2**-33``.
The stream key is the layer's key in a model, else drawn from torch's default CPU generator
(:func:`_draw_key`). Tensors on other devices, of other dtypes, and 0-size tensors use the default
path.
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import numpy as np
import torch
from numba import njit
from torch.nn import functional as F

from graphtrain.kernels.rng import rand_u64

_LOW32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


@njit(cache=True, nogil=True)
def _dropout_forward(x, key, threshold, scale, relu, out, keep):
    """``x``, ``out``: flat float arrays of ``n`` elements; ``keep``: uint8 ``[n]``. Element ``i``
    uses 32-bit draw ``i``: the low half of word ``i // 2`` for even ``i``, the high half for odd.
    With ``relu`` an element is also dropped where ``x <= 0`` (ReLU and dropout in one pass; the
    mask then also carries ReLU's gradient).

    One thread on purpose: this branch-free loop is vectorised by LLVM, where a ``prange`` version
    of it was not.
    """
    n = x.shape[0]
    for w in range(n // 2):
        r = rand_u64(key, np.uint64(w))
        k0 = np.uint8(((r & _LOW32) >= threshold) & ((x[2 * w] > 0) | (not relu)))
        k1 = np.uint8(((r >> _S32) >= threshold) & ((x[2 * w + 1] > 0) | (not relu)))
        keep[2 * w] = k0
        keep[2 * w + 1] = k1
        out[2 * w] = x[2 * w] * (scale * k0)
        out[2 * w + 1] = x[2 * w + 1] * (scale * k1)
    if n % 2:
        k = np.uint8(((rand_u64(key, np.uint64(n // 2)) & _LOW32) >= threshold) & ((x[n - 1] > 0) | (not relu)))
        keep[n - 1] = k
        out[n - 1] = x[n - 1] * (scale * k)


@njit(cache=True, nogil=True)
def _dropout_backward(grad, keep, scale, out):
    for i in range(grad.shape[0]):
        out[i] = grad[i] * (scale * keep[i])


def _threshold(p: float) -> np.uint64:
    """The 32-bit draw below which an element is dropped: ``round(p * 2**32)`` (``p`` in ``[0, 1)``)."""
    return np.uint64(min(int(round(p * 2.0**32)), 2**32 - 1))


def _draw_key(generator: Optional[torch.Generator] = None) -> np.uint64:
    """A stream key from ``generator`` (default: torch's default CPU generator, so ``torch.manual_seed`` governs it)."""
    return np.uint64(int(torch.randint(0, 2**62, (1,), dtype=torch.int64, generator=generator).item()))


@dataclass(frozen=True)
class StepRandomness:
    """What the dropout layers of one forward pass draw from: the step's CPU ``generator`` and
    whether CPU float tensors use the fused kernel (``RuntimeConfig.fused_dropout``)."""

    generator: Optional[torch.Generator]
    fused: bool = False


_STEP: contextvars.ContextVar[Optional[StepRandomness]] = contextvars.ContextVar("graphtrain_dropout_step", default=None)


@contextlib.contextmanager
def step_randomness(generator: torch.Generator, fused: bool = False) -> Iterator[StepRandomness]:
    """Dropout layers called in the body draw their keys from ``generator`` (one training step)."""
    step = StepRandomness(generator, fused)
    token = _STEP.set(step)
    try:
        yield step
    finally:
        _STEP.reset(token)


LayerKey = Tuple[int, bool]  # (key of the layer's mask, fused kernel)


def draw_layer_key() -> LayerKey:
    """The key of one dropout layer's mask, from the current step's generator (torch's default CPU
    generator outside a step), and whether the fused CPU kernel applies."""
    step = _STEP.get()
    key = int(_draw_key(step.generator if step is not None else None))
    return key, bool(step is not None and step.fused)


def keyed_relu_dropout(x: torch.Tensor, p: float, layer_key: LayerKey) -> torch.Tensor:
    """``dropout(relu(x), p)`` in training, its mask drawn from ``layer_key`` (see the module docstring):
    the fused kernel for CPU float tensors when ``layer_key`` says so, else a ``bernoulli_`` mask from
    a generator on ``x``'s device seeded with the key."""
    key, fused = layer_key
    if fused and _fast_path(x, p):
        return _CpuDropout.apply(x, p, True, key)
    h = torch.relu(x)
    if p == 0.0:
        return h
    gen = torch.Generator(device=h.device)
    gen.manual_seed(key)
    noise = torch.empty_like(h).bernoulli_(1.0 - p, generator=gen)
    return h * noise.div_(1.0 - p)


class _CpuDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float, relu: bool, key: Optional[int] = None):
        x = x.contiguous()
        out = torch.empty_like(x)
        keep = torch.empty(x.shape, dtype=torch.uint8)
        scale = np.float32(1.0 / (1.0 - p)) if x.dtype == torch.float32 else np.float64(1.0 / (1.0 - p))
        key = _draw_key() if key is None else np.uint64(key)
        _dropout_forward(x.detach().numpy().reshape(-1), key, _threshold(p), scale, bool(relu),
                         out.numpy().reshape(-1), keep.numpy().reshape(-1))
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        grad = grad.contiguous()
        out = torch.empty_like(grad)
        _dropout_backward(grad.numpy().reshape(-1), keep.numpy().reshape(-1), ctx.scale, out.numpy().reshape(-1))
        return out, None, None, None


def _fast_path(x: torch.Tensor, p: float) -> bool:
    """Whether the Numba kernel applies to ``x``: ``0 < p < 1`` and a non-empty float32/float64 CPU
    tensor (the callers check ``training``). Raises ValueError for ``p`` outside ``[0, 1)``."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    return p > 0.0 and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.numel() > 0


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)`` with the mask drawn by a Numba kernel for float32/float64 CPU tensors.

    Args:
        x: any shape. p: drop probability in ``[0, 1)``. training: False returns ``x`` unchanged.
    """
    if not training:
        return x
    if not _fast_path(x, p):
        return x if p == 0.0 else F.dropout(x, p, training)
    return _CpuDropout.apply(x, p, False)


def relu_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``dropout(F.relu(x), p, training)`` -- the same values, mask and gradients -- in one pass on
    CPU (no separate ReLU forward and backward)."""
    if not training or not _fast_path(x, p):
        return dropout(F.relu(x), p, training)
    return _CpuDropout.apply(x, p, True)

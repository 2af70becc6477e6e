"""Parsing and printing of byte sizes (``--memory-limit 4G``) and durations (``--time-budget 30m``)."""
from __future__ import annotations

import re

from graphtrain.errors import ConfigError

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
          "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}


def parse_size(text) -> int:
    """Bytes in a size such as ``512M``, ``4G``, ``1.5GiB`` or ``1000000`` (binary units: 1K = 1024)."""
    if isinstance(text, int):
        size = text
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
        if not m or m.group(2).lower() not in _UNITS:
            raise ConfigError(f"cannot read size {text!r}; use a number with an optional unit K, M, G or T (e.g. 4G)")
        size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size <= 0:
        raise ConfigError(f"size must be positive, got {text!r}")
    return size


def format_size(num_bytes: float) -> str:
    """Human-readable binary size, e.g. ``1.5 GiB``."""
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


_SECONDS = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text) -> float:
    """Seconds in a duration such as ``90``, ``90s``, ``30m``, ``1.5h`` or ``1d`` (a bare number is seconds)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
        if not m or m.group(2).lower() not in _SECONDS:
            raise ConfigError(f"cannot read duration {text!r}; use seconds or a number with a unit s, m, h or d "
                              "(e.g. 30m, 2h)")
        seconds = float(m.group(1)) * _SECONDS[m.group(2).lower()]
    if not seconds > 0:
        raise ConfigError(f"duration must be positive, got {text!r}")
    return seconds

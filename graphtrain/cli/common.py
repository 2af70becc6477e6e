"""Argument helpers shared by the CLI commands."""
from __future__ import annotations

from typing import List


def comma_list(text: str) -> List[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (empty items dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]

"""Raw account IDs, features and labels of generated accounts, computed per index chunk.

Every value of account ``i`` is a pure function of ``(seed, i, class of i)``, so the account table
streams out in chunks of any size with the same result.

**Raw IDs.** Account ``i`` gets ``scramble_ids(i, salt)`` with a salt derived from the seed (a bijection,
see :mod:`graphtrain.rmat`): as a string ``"AC"`` + 19 decimal digits (default), or as that int64. IDs are
neither contiguous nor ordered by activity.

**Features** (``FEATURES``) are deliberately only weakly informative, as real KYC data is: ring
members are on average a little younger, poorer, riskier and use more devices, each shift a
fraction of a standard deviation (times ``signal``; 0 makes every feature independent of the
class). Legitimate look-alike businesses are registered businesses and older; their employees and
customers are ordinary accounts. What makes ring members findable is the ring structure.

**Labels** are noisy, as confirmed-fraud labels are: a ring member is labelled 1 except with
probability ``missed_rate`` (fraud not yet caught); any other account is labelled 1 with
probability ``false_report_rate`` (a wrong report). The true membership is in ``rings.csv``.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from graphtrain.fraud.synth.draws import lognormal_at, normal_at, stream_key, uniform_at
from graphtrain.fraud.synth.planting import LOOKALIKE_BUSINESS, LOOKALIKE_PERSON, RING_HUB, RING_MEMBER
from graphtrain.rmat import scramble_ids

ID_PREFIX = b"AC"
ID_DIGITS = 19
FEATURES = ("age_days", "balance", "kyc_level", "num_devices", "country_risk", "is_business", "logins_30d")


def account_ids_int(index: np.ndarray, seed: int) -> np.ndarray:
    """int64 raw ID of each account index (sparse, in ``[0, 2**62)``)."""
    salt = int(stream_key(seed, "account-id")) & 0x7FFF_FFFF_FFFF_FFFF
    return scramble_ids(np.asarray(index, dtype=np.int64), salt)


def account_ids_string(index: np.ndarray, seed: int):
    """Raw string ID (``AC`` + 19 digits) of each account index, as a pyarrow ``string`` array."""
    import pyarrow as pa

    num = account_ids_int(index, seed).astype(np.uint64)
    n = num.size
    width = len(ID_PREFIX) + ID_DIGITS
    chars = np.empty((n, width), dtype=np.uint8)
    chars[:, : len(ID_PREFIX)] = np.frombuffer(ID_PREFIX, dtype=np.uint8)
    for d in range(ID_DIGITS - 1, -1, -1):
        chars[:, len(ID_PREFIX) + d] = (num % np.uint64(10)).astype(np.uint8) + ord("0")
        num //= np.uint64(10)
    offsets = np.arange(n + 1, dtype=np.int32) * width
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))


def account_features(index: np.ndarray, classes: np.ndarray, seed: int, signal: float = 1.0) -> Dict[str, np.ndarray]:
    """The ``FEATURES`` columns of the given accounts.

    Args:
        index: int64 ``[n]`` account indices.
        classes: int8 ``[n]`` their classes (see :mod:`graphtrain.fraud.synth.planting`).
        seed: generator seed.
        signal: scale of the ring members' feature shifts (0 = uninformative features).

    Returns:
        name -> array ``[n]``: ``age_days`` (float, days), ``balance`` (float, currency),
        ``kyc_level`` (int 0-3), ``num_devices`` (int >= 1), ``country_risk`` (float in [0, 1]),
        ``is_business`` (0/1), ``logins_30d`` (int, class-independent noise).
    """
    ring = np.isin(classes, (RING_MEMBER, RING_HUB)).astype(np.float64) * signal
    business = classes == LOOKALIKE_BUSINESS

    def stream(name):
        return stream_key(seed, "feature-" + name)

    age = lognormal_at(stream("age"), index, 6.3, 0.9) * np.exp(-0.35 * ring + 0.4 * business)
    balance = lognormal_at(stream("balance"), index, 7.0, 1.5) * np.exp(-0.5 * ring)
    kyc_u = uniform_at(stream("kyc"), index)
    kyc = np.searchsorted([0.1, 0.3, 0.7], np.clip(kyc_u - 0.08 * ring, 0.0, 1.0), side="right")
    dev_u = uniform_at(stream("devices"), index)
    p_stop = 1.0 / (1.5 + 0.5 * ring)  # geometric with mean 1.5 (normal) .. 2.0 (ring, signal 1)
    devices = 1 + np.floor(np.log1p(-dev_u) / np.log1p(-np.minimum(p_stop, 0.999))).astype(np.int64)
    risk = uniform_at(stream("risk"), index) ** (2.0 - 0.4 * ring)
    p_business = np.select(
        [business, classes == RING_HUB, classes == RING_MEMBER, classes == LOOKALIKE_PERSON],
        [0.9, 0.05 + 0.25 * signal, 0.05 + 0.03 * signal, 0.05],
        0.05,
    )
    is_business = (uniform_at(stream("business"), index) < p_business).astype(np.int64)
    logins = np.floor(np.exp(2.5 + 0.8 * normal_at(stream("logins"), index))).astype(np.int64)
    return {
        "age_days": np.round(age, 1),
        "balance": np.round(balance, 2),
        "kyc_level": kyc.astype(np.int64),
        "num_devices": np.minimum(devices, 50),
        "country_risk": np.round(risk, 4),
        "is_business": is_business,
        "logins_30d": logins,
    }


def account_labels(index: np.ndarray, classes: np.ndarray, seed: int, missed_rate: float, false_report_rate: float) -> np.ndarray:
    """int64 ``[n]`` observed 0/1 labels (noisy, see the module docstring)."""
    u = uniform_at(stream_key(seed, "label-noise"), index)
    ring = np.isin(classes, (RING_MEMBER, RING_HUB))
    return np.where(ring, u >= missed_rate, u < false_report_rate).astype(np.int64)


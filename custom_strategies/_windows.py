"""Window helpers the custom detectors need beyond breakout_vsa.helpers (partial windows, etc.).

All take and return arrays of shape (n, k) (bars x symbols), row t depending only on rows <= t.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from breakout_vsa.helpers import rolling_max, rolling_mean, rolling_min, shift


def _partial_window(a: np.ndarray, n: int, rolling: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    """A max/min over a[max(0, t-n+1) ... t]: bar 0 repeated n-1 times on top fills the short windows
    without changing their max/min (pandas' rolling reads an infinite pad as NaN, so no inf pad)."""
    if a.shape[0] == 0:
        return np.array(a, dtype="float64")
    padded = np.vstack([np.repeat(a[:1], n - 1, axis=0), a])
    return rolling(padded, n)[n - 1 :]


def partial_max(a: np.ndarray, n: int) -> np.ndarray:
    """max a[max(0, t-n+1) ... t]: a trailing maximum that accepts a short window at the start."""
    return _partial_window(a, n, rolling_max)


def partial_min(a: np.ndarray, n: int) -> np.ndarray:
    """min a[max(0, t-n+1) ... t], the counterpart of :func:`partial_max`."""
    return _partial_window(a, n, rolling_min)


def partial_mean(a: np.ndarray, n: int) -> np.ndarray:
    """mean a[max(0, t-n+1) ... t]: MEAN_n once n bars exist, the running mean of all bars before."""
    rows = np.arange(1, a.shape[0] + 1).reshape(-1, 1)
    running = np.cumsum(a, axis=0) / rows
    return np.where(rows >= n, rolling_mean(a, n), running)


def any_recent(mask: np.ndarray, n: int) -> np.ndarray:
    """True at t when ``mask`` holds on some bar of t-n+1 ... t (bars before 0 count as False)."""
    out = mask.copy()
    for k in range(1, n):
        out |= shift(mask, k, fill=False)
    return out


def last_true_index(mask: np.ndarray) -> np.ndarray:
    """The latest row tau <= t with ``mask[tau]`` (forward-filled per column), -1 when there is none."""
    rows = np.arange(mask.shape[0], dtype=np.int64).reshape(-1, 1)
    marked = np.where(mask, rows, -1)
    return np.maximum.accumulate(marked, axis=0) if mask.shape[0] else marked

"""Stand-in detectors defined at module level, so the analysis process can load them by name."""

from __future__ import annotations

import numpy as np

from breakout_vsa.core import test_bar_panel


def failing_on_odd_closes(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray) -> dict:
    """test_bar, except that it raises on panels holding a market whose last closed bar is odd-ish."""
    if c.shape[1] > 1 or int(c[-2, 0] * 1e6) % 2 == 0:
        raise RuntimeError("detector bug")
    return test_bar_panel(o, h, l, c, v)

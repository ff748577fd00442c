"""Frame <-> panel plumbing shared by the custom detectors' public wrappers.

The detectors compute on float64 arrays of shape (bars, symbols) (the panel contract); the seed's
call shapes take one DataFrame and ask about one row. This module does the conversion both ways,
so each detector module only states its own rule (spec 1.1, 12 D1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from breakout_vsa.helpers import frame_arrays

Panel = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]

# The frame -> (n, 1) panel conversion is the VSA package's, shared by every detector wrapper.
frame_panel = frame_arrays


def evaluated_row(n_rows: int, check_bar: int) -> int | None:
    """The 0-based row that ``check_bar`` points at (Python indexing), or None when outside the frame."""
    row = check_bar + n_rows if check_bar < 0 else check_bar
    return row if 0 <= row < n_rows else None


def scalar(value: object) -> object:
    """A numpy scalar as the plain Python value a hit dict carries (bool, int, float or text)."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def hit_metrics(
    arrays: Mapping[str, np.ndarray], row: int, names: Iterable[str], current: bool
) -> dict[str, object]:
    """Metrics ``names`` of column 0 at ``row``; a ``<name>_current`` array wins when ``current``."""
    out: dict[str, object] = {}
    for name in names:
        key = f"{name}_current" if current and f"{name}_current" in arrays else name
        out[name] = scalar(arrays[key][row, 0])
    return out


def series_frame(index: pd.Index, arrays: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Column 0 of every per-bar array as one DataFrame indexed like the input frame.

    Text columns get pandas' ``str`` dtype whatever the length (an empty object column would
    otherwise stay ``object`` while a filled one is inferred as ``str``).
    """
    columns = {
        name: pd.Series(values[:, 0], index=index, dtype="str" if values.dtype == object else None)
        for name, values in arrays.items()
    }
    return pd.DataFrame(columns, index=index)

"""The drawing kit of the demo exchange's planted patterns.

Each strategy module declares how its pattern looks (``Strategy.demo_plant``) with these helpers;
the demo exchange draws a quiet lead-in, calls the plant on it and scales the result. The arrays
are relative: prices around 1.0, volumes around 1.0, one row per day.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Arrays = dict[str, np.ndarray]
PlantFn = Callable[[Arrays, int], None]  # draws a pattern ending on row t of relative arrays
USUAL_VOLUMES = (1.1, 0.9)  # the lead-in's volumes alternate around 1.0 (even rows first)


def usual_volume(i: int) -> float:
    """The lead-in's volume of row ``i``: 1.1 on even rows, 0.9 on odd ones."""
    return USUAL_VOLUMES[i % 2]


def draw_bar(a: Arrays, i: int, change: float, up: float, down: float, volume: float) -> None:
    """Bar i opens at the previous close, moves by ``change`` and has relative wicks up/down."""
    o = a["close"][i - 1]
    c = o * (1.0 + change)
    a["open"][i], a["close"][i] = o, c
    a["high"][i] = max(o, c) * (1.0 + up)
    a["low"][i] = min(o, c) * (1.0 - down)
    a["volume"][i] = volume


def draw_trend(a: Arrays, start: int, stop: int, step: float, wick: float = 0.004) -> None:
    """Bars start..stop-1 each move by ``step`` with small wicks and the usual alternating volume."""
    for i in range(start, stop):
        draw_bar(a, i, step, wick, wick, usual_volume(i))

"""Volume Spread Analysis detectors: the generic engine, its six strategies and their panel cores.

``breakout_vsa.core`` is imported first: the strategy modules import it, and it re-exports their
seed names (``breakout_bar_vsa`` and the like) once it is complete.
"""

from breakout_vsa.core import (
    breakout_bar_panel,
    breakout_bar_vsa,
    loaded_bar_panel,
    loaded_bar_vsa,
    reversal_bar_panel,
    reversal_bar_vsa,
    start_bar_panel,
    start_bar_vsa,
    stop_bar_panel,
    stop_bar_vsa,
    test_bar_panel,
    test_bar_vsa,
    vsa_detector,
    vsa_panel,
)

__all__ = [
    "vsa_detector",
    "vsa_panel",
    "breakout_bar_vsa",
    "stop_bar_vsa",
    "reversal_bar_vsa",
    "start_bar_vsa",
    "loaded_bar_vsa",
    "test_bar_vsa",
    "breakout_bar_panel",
    "stop_bar_panel",
    "reversal_bar_panel",
    "start_bar_panel",
    "loaded_bar_panel",
    "test_bar_panel",
]

"""Signal quality (issue 16): what the bars after each strategy's signals did, against every bar.

``quality_table`` is the pure core on closed bars already loaded; ``signal_quality`` (async, with
``signal_quality_sync`` for scripts) loads each exchange x timeframe's history with
``load_history`` and runs it; ``main`` is the ``scanner quality`` command; ``COLUMNS`` says what
each output column means.
"""

from scanner.quality.cli import main
from scanner.quality.core import (
    COLUMN_NAMES,
    COLUMNS,
    HORIZONS,
    bootstrap_interval,
    forward_moves,
    parse_since,
    quality_table,
    validate_horizons,
)
from scanner.quality.history import HISTORY_BARS, load_history, signal_quality, signal_quality_sync
from scanner.quality.report import format_table, write_outputs

__all__ = [
    "COLUMNS",
    "COLUMN_NAMES",
    "HISTORY_BARS",
    "HORIZONS",
    "bootstrap_interval",
    "format_table",
    "forward_moves",
    "load_history",
    "main",
    "parse_since",
    "quality_table",
    "signal_quality",
    "signal_quality_sync",
    "validate_horizons",
    "write_outputs",
]

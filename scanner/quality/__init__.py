"""Signal quality (issue 16): what the bars after each strategy's signals did, against every bar.

``quality_table`` is the pure core on candles already loaded; ``signal_quality`` loads the history
and runs it per exchange x timeframe; ``main`` is the ``scanner quality`` command.
"""

from scanner.quality.core import (
    COLUMN_NAMES,
    COLUMNS,
    HORIZONS,
    bootstrap_intervals,
    forward_moves,
    parse_since,
    quality_table,
    validate_horizons,
)

__all__ = [
    "COLUMNS",
    "COLUMN_NAMES",
    "HORIZONS",
    "bootstrap_intervals",
    "forward_moves",
    "parse_since",
    "quality_table",
    "validate_horizons",
]

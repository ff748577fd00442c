"""Detector work on fetched candles, off the event loop: clean, volume-filter, analyse, report hits.

``Analyser.analyse`` is what a scan awaits for each batch of symbols (``batch_size``). The work runs in
the analysis process (``scanner.runtime``, which says why and what it buys). A batch travels as the
native candles' arrays (cheap to pickle); slicing and aggregating into the timeframe happen in the
worker too; the hits come back as ``Hit`` objects.

The thread is used when the process cannot be: strategies that cannot be pickled (a detector
defined in a notebook cell, a test's stand-in), a process that cannot start or has died (logged
once, then every later batch uses the thread), or ``SCANNER_ANALYSIS=thread``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from scanner import runtime
from scanner.results import Hit
from scanner.runtime import WorkerProcess, yield_if_slice_used
from utils.candles import Candles, Source, check_candles, faulty_rows, ohlcv_label, tidy_order
from utils.strategy_spec import Strategy
from utils.timeframes import OHLCV_COLUMNS, ohlcv_only

log = logging.getLogger(__name__)

MIN_ROWS = 10  # spec 9.1: a market with fewer rows is skipped for every strategy
PANEL_CHUNK = 256  # most symbols analysed together in one call of the analysis worker
ROWS_PER_BATCH = 64 * 1024  # most native candle rows sent to the worker in one batch
ANALYSIS_MODES = ("process", "thread")
ANALYSIS_ENV = "SCANNER_ANALYSIS"

# One thread for the fallback: several CPU-bound threads starve the event loop of the GIL.
_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scanner-detectors")
# Batches analysed in the analysis process since start (tests and benchmarks: where the work ran).
batches_in_process = 0

__all__ = [
    "ANALYSIS_MODES",
    "BatchOutcome",
    "MIN_ROWS",
    "PANEL_CHUNK",
    "batch_size",
    "Analyser",
    "BatchJob",
    "analyse_frames",
    "analyse_markets",
    "clean_arrays",
    "Market",
    "analysis_mode",
    "clean_frame",
    "prepare_and_analyse",
    "shutdown_analysis_process",
    "start_analysis_process",
]


class Market(NamedTuple):
    """One market ready for the detectors: its symbol, (bars, 5) float64 OHLCV rows, and the labels
    of its bars: a frame's index, or UTC millisecond open times (a batch from the analysis process,
    turned into the same timestamp as a frame's label only for a hit's bar: ``ohlcv_label``)."""

    symbol: str
    values: np.ndarray
    labels: pd.Index | np.ndarray

    def bar_time(self, row: int) -> pd.Timestamp:
        """The label of bar ``row``."""
        if isinstance(self.labels, pd.Index):
            return self.labels[row]
        return ohlcv_label(self.labels[row])


def _rejection(values: np.ndarray) -> str | None:
    """Why sorted, de-duplicated candles cannot be analysed: ``check_candles``'s reason, or too few bars."""
    problem = check_candles(values)
    if problem is not None:
        return problem.reason
    if len(values) < MIN_ROWS:
        return f"only {len(values)} bars (needs {MIN_ROWS})"
    return None


def clean_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame | None, str | None]:
    """Sort and de-duplicate (unambiguous fixes, ``utils.candles.tidy_order``); otherwise return a
    reason to skip the market: what ``utils.candles.check_candles`` rejects, or too few bars."""
    if frame is None or frame.empty:
        return None, "no candles"
    index = frame.index
    order = tidy_order(index.asi8 if isinstance(index, pd.DatetimeIndex) else index.to_numpy())
    if order is not None:
        frame = frame.iloc[order]
    frame = ohlcv_only(frame)
    reason = _rejection(frame.to_numpy(dtype="float64", copy=False))
    return (None, reason) if reason else (frame, None)


def clean_arrays(stamps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, str | None]:
    """``clean_frame`` on arrays (open times, (rows, 5) values): the sorted, de-duplicated arrays and
    the reason to skip the market (None when it can be analysed)."""
    if len(stamps) == 0:
        return stamps, values, "no candles"
    order = tidy_order(stamps)
    if order is not None:
        stamps, values = stamps[order], values[order]
    return stamps, values, _rejection(values)


def _suspects(stamps: np.ndarray, values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per market of a batch (rows one after another): whether ``clean_arrays`` may change or reject
    it (rows out of order or repeated, a bad value, high below low, too few bars). Only those go
    through it; the others are already what it would return, so they are taken as they are."""
    ends = np.cumsum(lengths)
    starts = ends - lengths
    flagged = faulty_rows(values)
    repeated = np.zeros(len(stamps), dtype=bool)
    repeated[1:] = stamps[1:] <= stamps[:-1]
    repeated[starts[lengths > 0]] = False  # a market's first row follows another market's last
    flagged |= repeated
    count = np.concatenate([[0], np.cumsum(flagged)])
    return (count[ends] - count[starts] > 0) | (lengths < MIN_ROWS)


def _below(values: np.ndarray, threshold: float) -> bool:
    """The volume filter (spec 11): USD volume of the last closed bar under ``threshold``."""
    return float(values[-2, 4]) * float(values[-2, 3]) < threshold


def _row_metrics(out: dict[str, np.ndarray], row: int, col: int, current: bool) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for key, arr in out.items():
        if key.startswith("signal") or key.endswith("_current"):
            continue
        source = out.get(f"{key}_current", arr) if current else arr
        value = source[row, col]
        metrics[key] = value.item() if hasattr(value, "item") else value
    return metrics


def _hits_from_panel(
    strategy: Strategy,
    out: dict[str, np.ndarray],
    markets: Sequence[Market],
    stacked: Sequence[np.ndarray],
    checked: tuple[str, ...],
    exchange: str,
    timeframe: str,
) -> list[Hit]:
    """One hit per symbol whose signal fires on a checked bar (the first of ``checked`` that does).

    Each market's bars are the first rows of its column (``_panel``): its current bar is row
    ``len - 1``, its last closed bar row ``len - 2``.
    """
    closed_sig = out["signal"]
    current_sig = out.get("signal_current", closed_sig)
    lengths = np.array([len(market.values) for market in markets])
    columns = np.arange(len(markets))
    taken = np.zeros(len(markets), dtype=bool)
    hits = []
    for which in checked:
        current = which == "current"
        rows = lengths - 1 if current else lengths - 2
        exists = rows >= 0
        signal = np.asarray(current_sig if current else closed_sig, dtype=bool)
        fired = np.zeros(len(markets), dtype=bool)
        fired[exists] = signal[rows[exists], columns[exists]]
        fired &= ~taken
        taken |= fired
        for col in np.flatnonzero(fired).tolist():
            market, row = markets[col], int(rows[col])
            close = float(stacked[3][row, col])
            hits.append(
                Hit(
                    strategy=strategy.name,
                    exchange=exchange,
                    timeframe=timeframe,
                    symbol=market.symbol,
                    bar_time=market.bar_time(row),
                    current_bar=current,
                    close=close,
                    volume_usd=float(stacked[4][row, col]) * close,
                    metrics=_row_metrics(out, row, col, current),
                )
            )
    return hits


def _panel(markets: Sequence[Market]) -> list[np.ndarray]:
    """Markets side by side, each from its first bar: one contiguous (bars, symbols) array per OHLCV
    column, as long as the longest market; a shorter one is continued with copies of its last row.

    Detectors are causal (row t reads rows <= t only; ``tests/test_analysis_batch.py`` checks every
    registered strategy), so a market's own rows come out exactly as they would in a panel of its
    length alone, and young markets share one panel instead of one each (a panel costs about as much
    for 1 symbol as for 100).
    """
    longest = max(len(market.values) for market in markets)
    cube = np.empty((longest, len(markets), len(OHLCV_COLUMNS)))
    for col, market in enumerate(markets):
        rows = len(market.values)
        cube[:rows, col] = market.values
        cube[rows:, col] = market.values[-1]
    return [np.ascontiguousarray(cube[:, :, i]) for i in range(len(OHLCV_COLUMNS))]


def analyse_markets(
    markets: Sequence[Market],
    strategies: Sequence[Strategy],
    exchange: str,
    timeframe: str,
    bars: str = "both",
) -> tuple[list[Hit], list[dict[str, str]]]:
    """Run every strategy over one panel of ``markets`` (``_panel``); returns hits and detector errors.

    A detector that raises on the panel is re-run symbol by symbol, so only the symbols it really
    fails on lose that one strategy's result (each reported), and every other hit still stands.
    """
    hits: list[Hit] = []
    errors: list[dict[str, str]] = []
    if not markets:
        return hits, errors
    stacked = _panel(markets)
    for strategy in strategies:
        checked = strategy.checked_bars(bars)  # type: ignore[arg-type]
        if not checked:
            continue
        try:
            out = strategy.panel(*stacked)
            hits.extend(_hits_from_panel(strategy, out, markets, stacked, checked, exchange, timeframe))
        except Exception:
            for market in markets:
                try:
                    single = _panel([market])
                    out = strategy.panel(*single)
                    hits.extend(_hits_from_panel(strategy, out, [market], single, checked, exchange, timeframe))
                except Exception as exc:  # a detector bug must cost only this result
                    errors.append({"symbol": market.symbol, "strategy": strategy.name, "reason": repr(exc)})
    return hits, errors


def analyse_frames(
    frames: Sequence[tuple[str, pd.DataFrame]],
    strategies: Sequence[Strategy],
    exchange: str,
    timeframe: str,
    bars: str = "both",
) -> tuple[list[Hit], list[dict[str, str]]]:
    """``analyse_markets`` of cleaned OHLCV frames (a hit's bar time is the frame's index label)."""
    markets = [
        Market(symbol, ohlcv_only(frame).to_numpy(dtype="float64", copy=False), frame.index) for symbol, frame in frames
    ]
    return analyse_markets(markets, strategies, exchange, timeframe, bars)


@dataclass
class BatchOutcome:
    """What the analysis worker found in one batch of fetched frames."""

    hits: list[Hit]
    errors: list[dict[str, str]]
    skipped: dict[str, str]
    filtered_out: int


def _filter_and_analyse(
    cleaned: Iterable[tuple[str, Market | str]],
    strategies: Sequence[Strategy],
    exchange: str,
    timeframe: str,
    bars: str,
    threshold: float,
) -> BatchOutcome:
    """The batch's cleaned markets (each a market, or the reason it is skipped), volume-filtered
    (spec 11: last closed bar) and analysed."""
    kept: list[Market] = []
    skipped: dict[str, str] = {}
    filtered_out = 0
    for symbol, market in cleaned:
        if isinstance(market, str):
            skipped[symbol] = market
        elif _below(market.values, threshold):
            filtered_out += 1
        else:
            kept.append(market)
    hits, errors = analyse_markets(kept, strategies, exchange, timeframe, bars)
    return BatchOutcome(hits, errors, skipped, filtered_out)


def prepare_and_analyse(
    batch: Sequence[tuple[str, pd.DataFrame]],
    strategies: Sequence[Strategy],
    exchange: str,
    timeframe: str,
    bars: str,
    threshold: float,
) -> BatchOutcome:
    """Clean, volume-filter (spec 11: last closed bar) and analyse a batch of frames."""

    def cleaned() -> Iterator[tuple[str, Market | str]]:
        for symbol, raw in batch:
            frame, reason = clean_frame(raw)
            yield symbol, reason or Market(symbol, frame.to_numpy(dtype="float64", copy=False), frame.index)

    return _filter_and_analyse(cleaned(), strategies, exchange, timeframe, bars, threshold)


def batch_size(depth: int) -> int:
    """Symbols per batch when each brings ``depth`` native rows: at most ``ROWS_PER_BATCH`` rows.

    Bounding rows, not symbols, keeps every hand-over to the worker short (a 1w batch brings 706
    daily rows per symbol, a 1d batch 100), and it staggers the timeframes of one scan: fed by the
    same daily fetches, they used to hand over their batches in the same event-loop step.
    """
    return max(32, min(PANEL_CHUNK, ROWS_PER_BATCH // max(depth, 1)))


@dataclass
class PackedBatch:
    """A batch of candle frames as three arrays: every frame's rows one after another.

    Two large arrays pickle in about a third of the time of 256 pairs of small ones (5 vs 17 ms for
    256 x 706 daily bars); the pickling holds the interpreter lock that the event loop needs.
    """

    symbols: list[str]
    lengths: np.ndarray  # rows per symbol
    stamps: np.ndarray  # int64 UTC milliseconds
    values: np.ndarray  # float64 (rows, 5): open, high, low, close, volume


def pack(batch: Sequence[tuple[str, Candles]], depth: int | None = None) -> PackedBatch:
    """The batch's candles, each cut to its last ``depth`` rows, as one ``PackedBatch``."""
    parts = [candles if depth is None else candles.tail(depth) for _, candles in batch]
    lengths = np.array([len(part) for part in parts], dtype=np.int64)
    if not parts:
        return PackedBatch([], lengths, np.empty(0, np.int64), np.empty((0, len(OHLCV_COLUMNS))))
    return PackedBatch(
        [symbol for symbol, _ in batch],
        lengths,
        np.concatenate([part.stamps for part in parts]),
        np.concatenate([part.values for part in parts]).reshape(-1, len(OHLCV_COLUMNS)),
    )


def unpack(packed: PackedBatch) -> list[tuple[str, Candles]]:
    """The candles ``pack`` joined, rows and order unchanged (views into the batch's arrays)."""
    ends = np.cumsum(packed.lengths).tolist()
    return [
        (symbol, Candles(packed.stamps[start:end], packed.values[start:end]))
        for symbol, start, end in zip(packed.symbols, [0, *ends[:-1]], ends)
    ]


@dataclass(frozen=True)
class BatchJob:
    """What happens to every batch of one scan, in the worker: the timeframe's bars derived by
    ``source``, cleaned, filtered by ``threshold`` and run through ``strategies``. Picklable: it
    travels to the analysis process with each batch."""

    source: Source
    strategies: tuple[Strategy, ...]
    exchange: str
    timeframe: str
    bars: str
    threshold: float

    def run(self, packed: PackedBatch) -> BatchOutcome:
        """What the analysis process (or the thread) runs: ``prepare_and_analyse`` of the frames
        ``source.derive`` would build, on the batch's arrays (no frame or Python step per market for
        deriving and checking; only markets ``_suspects`` flags are cleaned one by one)."""
        stamps, values, lengths = self.source.derive_segments(
            packed.stamps, packed.values, packed.lengths, self.timeframe
        )
        suspects = _suspects(stamps, values, lengths).tolist()
        ends = np.cumsum(lengths).tolist()

        def cleaned() -> Iterator[tuple[str, Market | str]]:
            for symbol, suspect, start, end in zip(packed.symbols, suspects, [0, *ends[:-1]], ends):
                market_stamps, market_values, reason = stamps[start:end], values[start:end], None
                if suspect:
                    market_stamps, market_values, reason = clean_arrays(market_stamps, market_values)
                yield symbol, reason or Market(symbol, market_values, market_stamps)

        return _filter_and_analyse(cleaned(), self.strategies, self.exchange, self.timeframe, self.bars,
                                   self.threshold)


def analysis_mode() -> str:
    """``process`` (default) or ``thread``, from ``SCANNER_ANALYSIS``; ``ValueError`` otherwise."""
    mode = os.environ.get(ANALYSIS_ENV, "process").strip().lower() or "process"
    if mode not in ANALYSIS_MODES:
        raise ValueError(f"{ANALYSIS_ENV}={mode!r} is not valid; choose one of: {', '.join(ANALYSIS_MODES)}")
    return mode


def start_analysis_process() -> WorkerProcess | None:
    """The process-wide analysis process, started on first use (None when it cannot be used)."""
    return runtime.analysis_process()


def shutdown_analysis_process() -> None:
    """Stop the analysis process and forget any failure: the next scan starts a fresh one."""
    runtime.stop_analysis_process()


def _picklable(strategies: Sequence[Strategy]) -> bool:
    """True when the analysis process can load every detector by name (not from ``__main__``)."""
    if any(getattr(strategy.panel, "__module__", "__main__") == "__main__" for strategy in strategies):
        return False
    try:
        pickle.dumps(list(strategies))
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


class Analyser:
    """Hands one scan's batches to the analysis process (or the thread) and awaits the outcomes.

    Where the work runs is decided once per scan: in the process unless ``SCANNER_ANALYSIS=thread``
    or a detector cannot be loaded there; the process is started at once, so it boots while the
    symbols are listed. A process that dies or is shut down mid-scan sends the rest to the thread.
    """

    def __init__(self, job: BatchJob) -> None:
        self.job = job
        self.in_process = analysis_mode() == "process" and _picklable(job.strategies)
        if self.in_process:
            start_analysis_process()

    async def analyse(self, batch: Sequence[tuple[str, Candles]]) -> BatchOutcome:
        """Analyse native candles (``KlineCache.native``) of a batch off the event loop."""
        global batches_in_process
        loop = asyncio.get_running_loop()
        await yield_if_slice_used()
        packed = pack(batch, self.job.source.depth)
        executor = start_analysis_process() if self.in_process else None
        if executor is not None:
            try:
                work = loop.run_in_executor(executor, self.job.run, packed)
            except BrokenProcessPool as exc:
                runtime.give_up(f"the analysis process died ({exc})")
            except RuntimeError as exc:  # shut down under this scan (interpreter exit, another thread)
                runtime.give_up(f"the analysis process is shut down ({exc!r})")
            else:
                try:
                    outcome = await work
                except BrokenProcessPool as exc:
                    runtime.give_up(f"the analysis process died ({exc})")
                else:
                    batches_in_process += 1
                    return outcome
        return await loop.run_in_executor(_THREAD, self.job.run, packed)

"""The one result type of a scan: hits plus a summary per exchange x timeframe.

The CLI table, the notebook DataFrame, the CSV/JSON export and the Telegram formatter all read
this; nothing downstream re-derives what the scan already knows. Each hit carries its chart link
(``exchanges.links``); each summary its firing rate per strategy (hits per scanned market).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

HIT_COLUMNS = [
    "strategy",
    "exchange",
    "timeframe",
    "symbol",
    "bar_time",
    "current_bar",
    "close",
    "volume_usd",
    "link",
]
# Metrics that repeat a common column under another name; rows keep the common column only.
DUPLICATE_METRICS: frozenset[str] = frozenset({"close_price"})
# Significant digits of a price in the table and the alerts (0.00002431, 1,043.02).
PRICE_SIGNIFICANT_DIGITS = 4


def format_price(value: float) -> str:
    """A price with enough decimals for four significant digits (at least two), never scientific."""
    if not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    decimals = max(2, PRICE_SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


@dataclass(frozen=True)
class Hit:
    """One strategy firing on one market's bar."""

    strategy: str
    exchange: str
    timeframe: str
    symbol: str
    bar_time: pd.Timestamp
    current_bar: bool
    close: float
    volume_usd: float
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def link(self) -> str | None:
        """The TradingView chart of the market (None for the demo exchange)."""
        # Imported here, not at module import: the analysis process builds hits and must not load
        # the exchange clients (aiohttp) for that; this halves its start-up CPU.
        from exchanges.links import chart_url

        return chart_url(self.exchange, self.symbol)

    def as_row(self) -> dict[str, Any]:
        """The common columns, then the strategy's metrics (duplicates of a common column left out)."""
        row = {name: getattr(self, name) for name in HIT_COLUMNS}
        for key, value in self.metrics.items():
            if key not in DUPLICATE_METRICS:
                row.setdefault(key, value)
        return row


@dataclass
class AlertFailure:
    """One Telegram message that could not be delivered (the token is never stored here)."""

    channel: str
    user: str
    reason: str


@dataclass
class AlertReport:
    """What the notifier did with a scan's hits."""

    sent: int = 0
    messages: int = 0
    duplicates_skipped: int = 0
    retried_from_ledger: int = 0
    pending: int = 0
    failures: list[AlertFailure] = field(default_factory=list)
    undeliverable: int = 0  # alerts given up this run: their target refuses for good

    def merge(self, other: AlertReport) -> None:
        self.sent += other.sent
        self.messages += other.messages
        self.duplicates_skipped += other.duplicates_skipped
        self.retried_from_ledger += other.retried_from_ledger
        self.pending += other.pending
        self.failures.extend(other.failures)
        self.undeliverable += other.undeliverable

    def line(self) -> str:
        """The alert line a run prints whenever sending is on (also when nothing new was sent)."""
        return (
            f"Alerts: {self.sent} sent in {self.messages} messages, {self.duplicates_skipped} already sent, "
            f"{self.pending} pending, {self.undeliverable} undeliverable, {len(self.failures)} failures"
        )


@dataclass
class ScanSummary:
    """What happened in one exchange x timeframe scan; every lost symbol has a reason here."""

    exchange: str
    timeframe: str
    strategies: list[str]
    listed: int = 0
    fetched: int = 0
    filtered_out: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    detector_errors: list[dict[str, str]] = field(default_factory=list)
    hits_per_strategy: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    duration_s: float = 0.0
    error: str | None = None
    cancelled: bool = False
    # When one client served several timeframes, its requests are counted once, on one summary:
    # that one lists the timeframes they served, the others name the timeframe that counts them.
    requests_served: list[str] = field(default_factory=list)
    requests_counted_with: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled

    @property
    def scanned(self) -> int:
        """Markets the detectors ran on: fetched, minus those below the volume threshold or skipped."""
        return max(self.fetched - self.filtered_out - len(self.skipped), 0)

    @property
    def firing_rate(self) -> dict[str, float]:
        """Hits per scanned market of each strategy in this scan (0.0 when nothing was scanned)."""
        scanned = self.scanned
        return {name: (hits / scanned if scanned else 0.0) for name, hits in self.hits_per_strategy.items()}

    def requests_text(self) -> str:
        if self.requests_counted_with:
            return f"requests counted with {self.requests_counted_with}"
        served = f" (served {', '.join(self.requests_served)})" if len(self.requests_served) > 1 else ""
        return f"{self.requests} requests{served}"

    def line(self) -> str:
        """A one-line human summary for logs and the CLI."""
        if self.error:  # the exchange is named once, at the start of the line
            error = self.error.replace(f"{self.exchange}: ", "")
            return f"{self.exchange} {self.timeframe}: FAILED - {error}"
        rates = self.firing_rate
        fired = [f"{k}={v} ({rates[k]:.1%})" for k, v in self.hits_per_strategy.items() if v]
        hits = ", ".join(fired) or "no hits"
        text = (
            f"{self.exchange} {self.timeframe}: {self.listed} listed, {self.fetched} fetched, "
            f"{self.filtered_out} below volume, {len(self.skipped)} skipped, {len(self.failed)} failed, "
            f"{len(self.detector_errors)} detector errors; {self.scanned} scanned; {hits}; "
            f"{self.requests_text()} in {self.duration_s:.1f}s"
        )
        return text + (" (cancelled)" if self.cancelled else "")

    def as_dict(self) -> dict[str, Any]:
        """Every field plus the derived ``scanned`` and ``firing_rate`` (for JSON)."""
        return {**asdict(self), "scanned": self.scanned, "firing_rate": self.firing_rate}


def count_requests_once(summaries: list[ScanSummary], total: int) -> None:
    """Put ``total``, the requests of one client that served all ``summaries`` (one exchange, several
    timeframes), on the first of them and mark the others, so summing ``requests`` counts each once.

    The per-timeframe counts measured while the scans overlapped each include the others' requests.
    """
    if len(summaries) < 2:
        return
    first, rest = summaries[0], summaries[1:]
    first.requests = total
    first.requests_served = [s.timeframe for s in summaries]
    for summary in rest:
        summary.requests = 0
        summary.requests_counted_with = first.timeframe


@dataclass
class ScanResult:
    """Hits and per-scan summaries; merge several with ``ScanResult.combine``."""

    hits: list[Hit] = field(default_factory=list)
    summaries: list[ScanSummary] = field(default_factory=list)
    alerts: AlertReport = field(default_factory=AlertReport)

    @classmethod
    def combine(cls, results: list[ScanResult]) -> ScanResult:
        merged = cls()
        for result in results:
            merged.hits.extend(result.hits)
            merged.summaries.extend(result.summaries)
            merged.alerts.merge(result.alerts)
        return merged

    def by_strategy(self) -> dict[str, list[Hit]]:
        grouped: dict[str, list[Hit]] = {}
        for hit in self.hits:
            grouped.setdefault(hit.strategy, []).append(hit)
        return grouped

    @property
    def failures(self) -> dict[str, str]:
        """Exchange-level failures keyed by ``exchange timeframe``."""
        return {f"{s.exchange} {s.timeframe}": s.error for s in self.summaries if s.error}

    def to_frame(self) -> pd.DataFrame:
        """One row per hit: the common columns, then every metric of the hit's strategy."""
        if not self.hits:
            return pd.DataFrame(columns=HIT_COLUMNS)
        return pd.DataFrame([hit.as_row() for hit in self.hits])

    def summary_frame(self) -> pd.DataFrame:
        rows = []
        for s in self.summaries:
            rows.append(
                {
                    "exchange": s.exchange,
                    "timeframe": s.timeframe,
                    "listed": s.listed,
                    "fetched": s.fetched,
                    "filtered_out": s.filtered_out,
                    "skipped": len(s.skipped),
                    "failed": len(s.failed),
                    "detector_errors": len(s.detector_errors),
                    "scanned": s.scanned,
                    "hits": sum(s.hits_per_strategy.values()),
                    "requests": s.requests,
                    "requests_served": ", ".join(s.requests_served) or None,
                    "requests_counted_with": s.requests_counted_with,
                    "duration_s": round(s.duration_s, 3),
                    "error": s.error,
                }
            )
        return pd.DataFrame(rows)

    def firing_rate_frame(self) -> pd.DataFrame:
        """One row per exchange x timeframe x strategy: hits, scanned markets and the firing rate."""
        rows = [
            {"exchange": s.exchange, "timeframe": s.timeframe, "strategy": name, "hits": hits,
             "scanned": s.scanned, "firing_rate": s.firing_rate[name]}
            for s in self.summaries if s.error is None
            for name, hits in s.hits_per_strategy.items()
        ]
        columns = ["exchange", "timeframe", "strategy", "hits", "scanned", "firing_rate"]
        return pd.DataFrame(rows, columns=columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hits": [_jsonable(hit.as_row()) for hit in self.hits],
            "summaries": [_jsonable(s.as_dict()) for s in self.summaries],
            "alerts": _jsonable(asdict(self.alerts)),
        }

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_csv(self, path: str | Path) -> None:
        self.to_frame().to_csv(path, index=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

"""Typed exchange errors: every HTTP or envelope failure is translated into one of these.

Only ``TemporaryError`` and its subclasses (``RateLimited``, ``RequestTimeout``) are retried.
``IPBanned`` is never retried: the client refuses further calls until ``until``.
"""

from __future__ import annotations


class ExchangeError(Exception):
    """A failure reported by (or about) one exchange market, with the exchange's own code and text."""

    retryable = False

    def __init__(
        self,
        exchange: str,
        message: str,
        *,
        status: int | None = None,
        code: str | int | None = None,
        symbol: str | None = None,
    ) -> None:
        self.exchange = exchange
        self.status = status
        self.code = code
        self.symbol = symbol
        self.message = message
        super().__init__(self.describe())

    def describe(self) -> str:
        parts = [self.exchange]
        if self.symbol:
            parts.append(self.symbol)
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code is not None:
            parts.append(f"code {self.code}")
        return f"{' '.join(parts)}: {self.message}"


class TemporaryError(ExchangeError):
    """5xx, connection reset, exchange overload: worth retrying with backoff."""

    retryable = True


class RequestTimeout(TemporaryError):
    """The request did not complete within the per-request timeout."""


class RateLimited(TemporaryError):
    """HTTP 429 or the exchange's own rate-limit code; ``retry_after`` in seconds when known."""

    def __init__(self, exchange: str, message: str, *, retry_after: float | None = None, **kw) -> None:
        self.retry_after = retry_after
        super().__init__(exchange, message, **kw)


class IPBanned(ExchangeError):
    """HTTP 418 (Binance/MEXC) or Bybit's 403 IP block: no call until ``until`` (epoch seconds)."""

    def __init__(self, exchange: str, message: str, *, until: float, **kw) -> None:
        self.until = until
        super().__init__(exchange, message, **kw)


class BadSymbol(ExchangeError):
    """The exchange does not know the symbol (or it is not tradable)."""


class BadResponse(ExchangeError):
    """A body we cannot use: truncated JSON, an HTML page, an error envelope, bad candle rows."""


class BadCandles(BadResponse):
    """Candle rows that parse but cannot be trusted (null/NaN/negative values, high < low).

    The request worked, the market's data did not: the scanner skips the symbol with this reason
    rather than counting it as a failed request.
    """


# Names used by the seed and the issues.
RateLimitError = RateLimited
SymbolNotFound = BadSymbol
NetworkError = TemporaryError

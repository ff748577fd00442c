"""The ``Sink`` interface every delivery kind implements, and the classification of failures.

A sink renders items (alert blocks, charts, summaries, notices) into messages for one target, sends
one message, and says what a failure means for the planner:

- ``RETRY``: transient (network, 5xx, timeout): retried in this run with backoff, then left pending;
- ``RETRY_AFTER``: the receiver asks to wait ``retry_after`` seconds (Telegram flood control,
  Discord's 429): waited out when short, else left pending;
- ``LATER``: not worth retrying in this run but not the target's fault (a rejected bot token);
- ``REJECTED``: this one message was refused (bad content); the next messages still go;
- ``PERMANENT``: the target refuses for good (a chat that blocked the bot, a deleted webhook):
  counted per run, and after a configured number of runs the target is marked undeliverable.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scanner.ledger import AlertKey


class Outcome(enum.Enum):
    RETRY = "retry"
    RETRY_AFTER = "retry_after"
    LATER = "later"
    REJECTED = "rejected"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Failure:
    """What a failed send means: the outcome, a redacted reason, and the wait the receiver asked."""

    outcome: Outcome
    reason: str
    retry_after: float | None = None


@dataclass(frozen=True)
class Item:
    """One unit the ledger tracks for one target: an alert block (``keys`` holds one key per
    exchange when an asset is grouped), a chart (``image``), a summary or a notice.

    ``text`` is the sink's rendering of the item (what the ledger stores and re-sends); ``group`` is
    (strategy, exchange label, timeframe) for alert blocks, the header they are packed under.
    """

    keys: tuple[AlertKey, ...]
    kind: str
    text: str
    group: tuple[str, str, str] | None = None
    image: bytes | None = None

    @property
    def key(self) -> AlertKey:
        return self.keys[0]


@dataclass(frozen=True)
class Message:
    """One call to the receiver: the items it delivers and the sink's own payload."""

    items: tuple[Item, ...]
    body: Any = field(compare=False)


class Sink(ABC):
    """One transport for one ledger channel (a Telegram bot, a webhook URL).

    ``channel`` names the ledger channel; the targets are chat strings the sink understands (a
    Telegram chat id, ``webhook:<name>``). ``open`` may fail: the planner then records the failure
    for every target of the sink, classified by :meth:`classify`.
    """

    kind: str = "sink"
    channel: str = ""

    async def open(self) -> None:
        """Prepare the transport (check a token, open a session)."""

    async def close(self) -> None:
        """Release the transport."""

    @abstractmethod
    def alert_text(self, hits: Sequence[Any], novelty: str | None) -> str:
        """The text block of one alert (hits of one asset; several when grouped across exchanges)."""

    @abstractmethod
    def header(self, group: tuple[str, str, str]) -> str:
        """The header of a (strategy, exchange label, timeframe) group."""

    @abstractmethod
    def notice_text(self, title: str, lines: Sequence[str]) -> str:
        """An admin message (a run summary, a heartbeat) in this sink's markup."""

    @abstractmethod
    def render(self, items: Sequence[Item]) -> list[Message]:
        """The messages that deliver ``items``, in sending order; every item in exactly one."""

    @abstractmethod
    async def send(self, chat: str, message: Message) -> None:
        """Send one message to ``chat``; raise on failure (classified by :meth:`classify`)."""

    @abstractmethod
    def classify(self, exc: BaseException) -> Failure:
        """What a failure of :meth:`open` or :meth:`send` means (see the module docstring)."""

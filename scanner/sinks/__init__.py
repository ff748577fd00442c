"""Delivery sinks: one small class per way of reaching a person (Telegram, webhook).

The planner in :mod:`scanner.alerts` decides what to send (through the ledger); a sink only knows
how to render a batch for its target, send one message and classify a failure.
"""

from scanner.sinks.base import Failure, Item, Message, Outcome, Sink

__all__ = ["Failure", "Item", "Message", "Outcome", "Sink"]

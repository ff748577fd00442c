"""Who gets alerts through which sink: the ``[alerts]``/``[sinks]`` settings, users' targets, and
the transports built for a channel.

A user name is reached on every sink that has a target of that name (a Telegram chat id, a
webhook URL) unless ``[sinks] <user> = [...]`` narrows it. Summaries and notices go through the
bot of ``[alerts] admin_channel`` (default: the first channel with a token).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from scanner.sinks.base import Sink
from utils.config import CHANNELS, TelegramConfig, file_config, telegram_config

UNDELIVERABLE_AFTER_RUNS = 3
NOVELTY_BARS = 20
WEBHOOK_TIMEOUT_S = 15.0
SINK_TELEGRAM = "telegram"
SINK_WEBHOOK = "webhook"
SINK_KINDS: tuple[str, ...] = (SINK_TELEGRAM, SINK_WEBHOOK)
ADMIN_FALLBACK_CHANNEL = "admin"  # ledger channel of admin messages when no bot is configured


@dataclass(frozen=True)
class AlertSettings:
    """The ``[alerts]`` table (and ``[telegram] charts``, ``[sinks]``) of the config file."""

    charts: bool = False
    summary_user: str | None = None
    group_assets: bool = True
    undeliverable_after: int = UNDELIVERABLE_AFTER_RUNS
    novelty_bars: int = NOVELTY_BARS
    admin_channel: str | None = None
    sinks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    webhook_timeout_s: float = WEBHOOK_TIMEOUT_S
    telegram_timeout_s: float | None = None  # None: python-telegram-bot's own timeouts


def alert_settings() -> AlertSettings:
    """Settings from the local config file; ``ValueError`` naming the key for a bad value."""
    data = file_config()
    table = data.get("alerts", {})
    after = table.get("undeliverable_after", UNDELIVERABLE_AFTER_RUNS)
    bars = table.get("novelty_bars", NOVELTY_BARS)
    for name, value in (("undeliverable_after", after), ("novelty_bars", bars)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"[alerts] {name} must be a whole number of at least 1, got {value!r}")
    timeouts = {name: table.get(name) for name in ("webhook_timeout_s", "telegram_timeout_s")}
    for name, value in timeouts.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is not None and (not number or value <= 0):
            raise ValueError(f"[alerts] {name} must be a positive number of seconds, got {value!r}")
    admin = table.get("admin_channel")
    if admin is not None and admin not in CHANNELS:
        raise ValueError(f"unknown [alerts] admin_channel {admin!r}; channels: {', '.join(CHANNELS)}")
    sinks: dict[str, tuple[str, ...]] = {}
    for user, kinds in data.get("sinks", {}).items():
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        unknown = [k for k in kinds if k not in SINK_KINDS]
        if unknown:
            raise ValueError(f"unknown sink {unknown[0]!r} for user {user!r}; sinks: {', '.join(SINK_KINDS)}")
        sinks[user] = kinds
    return AlertSettings(
        charts=bool(data.get("telegram", {}).get("charts", False)),
        summary_user=table.get("summary_user") or None,
        group_assets=bool(table.get("group_assets", True)),
        undeliverable_after=after,
        novelty_bars=bars,
        admin_channel=admin,
        sinks=sinks,
        webhook_timeout_s=float(timeouts["webhook_timeout_s"] or WEBHOOK_TIMEOUT_S),
        telegram_timeout_s=timeouts["telegram_timeout_s"],
    )




@dataclass(frozen=True)
class Target:
    """One place a user is reached: a Telegram chat or a webhook (chat ``webhook:<name>``)."""

    user: str
    sink: str
    chat: str


def resolve_targets(
    users: Iterable[str],
    telegram: TelegramConfig,
    webhooks: Mapping[str, str],
    choices: Mapping[str, Sequence[str]] | None = None,
) -> list[Target]:
    """Every target of ``users``; ``ValueError`` naming the unknown ones and the configured names."""
    from scanner.sinks.webhook import webhook_chat

    targets: list[Target] = []
    unknown: list[str] = []
    for user in dict.fromkeys(users):
        allowed = tuple((choices or {}).get(user, SINK_KINDS))
        found = []
        if SINK_TELEGRAM in allowed and user in telegram.users:
            found.append(Target(user, SINK_TELEGRAM, str(telegram.users[user])))
        if SINK_WEBHOOK in allowed and user in webhooks:
            found.append(Target(user, SINK_WEBHOOK, webhook_chat(user)))
        if not found:
            unknown.append(user)
        targets.extend(found)
    if unknown:
        configured = ", ".join(sorted({*telegram.users, *webhooks})) or "none"
        raise ValueError(
            "; ".join(
                f"unknown Telegram user {u!r}; configured users: {configured} "
                f"(set SCANNER_TELEGRAM_CHAT_{u.upper()} or SCANNER_WEBHOOK_URL_{u.upper()} to add it)"
                for u in unknown
            )
        )
    return targets


def admin_channel(telegram: TelegramConfig, settings: AlertSettings, targets: Sequence[Target] = ()) -> str:
    """The channel whose bot sends summaries and notices: configured, else the first with a token.

    ``ValueError`` when one of ``targets`` is a Telegram chat and that channel has no bot token.
    """
    first = next((c for c in CHANNELS if c in telegram.tokens), ADMIN_FALLBACK_CHANNEL)
    channel = settings.admin_channel or first
    if any(t.sink == SINK_TELEGRAM for t in targets) and channel not in telegram.tokens:
        name = channel if channel in CHANNELS else CHANNELS[0]
        raise ValueError(
            f"no bot token for Telegram channel {name!r} to send admin messages: "
            f"set SCANNER_TELEGRAM_TOKEN_{name.upper()} (or [alerts] admin_channel)"
        )
    return channel


@dataclass
class Sinks:
    """The configured transports: Telegram settings, webhook URLs, and which user gets which."""

    telegram: TelegramConfig
    webhooks: dict[str, str]
    settings: AlertSettings

    @classmethod
    def configured(
        cls, telegram: TelegramConfig | None = None, webhooks: Mapping[str, str] | None = None,
        settings: AlertSettings | None = None,
    ) -> Sinks:
        from scanner.sinks.webhook import webhook_urls

        return cls(
            telegram if telegram is not None else telegram_config(),
            dict(webhooks) if webhooks is not None else webhook_urls(),
            settings if settings is not None else alert_settings(),
        )

    def build(self, channel: str, kind: str) -> Sink | None:
        """The sink of ``kind`` for ``channel``, or None when it is not configured (no token)."""
        if kind == SINK_TELEGRAM:
            if channel not in self.telegram.tokens:
                return None
            from scanner.sinks.telegram import TelegramSink

            return TelegramSink(
                channel, self.telegram.tokens[channel], self.telegram.base_url,
                self.settings.telegram_timeout_s,
            )
        from scanner.sinks.webhook import WebhookSink

        return WebhookSink(channel, self.webhooks, self.settings.webhook_timeout_s)
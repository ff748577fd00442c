"""Project logging set-up and the bot-token redaction that applies to every log record.

A Telegram bot token is a password: python-telegram-bot logs its API URL (``.../bot<token>``) at
DEBUG, httpx logs every request URL at INFO, and ``InvalidToken`` quotes the whole token in its
message. Redaction therefore happens where records are *created*, through the log-record
factory, so it covers every logger (httpx, httpcore, telegram, ours) and every handler, including
handlers a user adds after :func:`setup_logging` or without calling it at all.
:func:`install_redaction` is idempotent and the notifier calls it before sending anything.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

# The shape of a Bot API token: the bot id, a colon (possibly percent-encoded in a URL), the secret.
TOKEN_PATTERN = re.compile(r"\d{6,12}(?::|%3[Aa])[A-Za-z0-9_-]{30,}")
REDACTED = "[REDACTED-TOKEN]"
DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers whose INFO lines carry request URLs (with the token in the path for the Bot API).
NOISY_LOGGERS: dict[str, int] = {"httpx": logging.WARNING, "httpcore": logging.WARNING}

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_FACTORY_MARK = "_scanner_redacting"


def register_secret(*secrets: str) -> None:
    """Mask these exact strings too (tokens that do not have the usual shape, e.g. in tests)."""
    with _secrets_lock:
        for secret in secrets:
            if secret:
                _secrets.add(str(secret))
                _secrets.add(quote(str(secret), safe=""))


def register_configured_tokens() -> None:
    """Register every bot token configured right now (environment and local config file)."""
    from utils.config import telegram_config

    register_secret(*telegram_config().tokens.values())


def redact(text: str) -> str:
    """``text`` with every bot token (by shape or registered) replaced by ``[REDACTED-TOKEN]``."""
    if not text:
        return text
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return TOKEN_PATTERN.sub(REDACTED, text)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Rewrite ``record`` in place so that neither its message, its args nor its traceback hold a token.

    The message is rendered once (``msg % args``); only when redaction changes it are ``msg`` and
    ``args`` replaced by the redacted text, so records without secrets keep their structure.
    """
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: let the handler report it, but mask the raw parts
        record.msg = redact(str(record.msg))
        record.args = _redact_args(record.args)
    else:
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        clean = redact(text)
        if clean != text:
            record.exc_text = clean
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def _redact_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(redact(a) if isinstance(a, str) else a for a in args)
    if isinstance(args, dict):
        return {k: redact(v) if isinstance(v, str) else v for k, v in args.items()}
    return args


class RedactingFilter(logging.Filter):
    """A handler/logger filter doing the same redaction (for records built outside the factory)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_redaction() -> None:
    """Wrap the current log-record factory so every new record is redacted; safe to call repeatedly."""
    current: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
    if getattr(current, _FACTORY_MARK, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(current(*args, **kwargs))

    setattr(factory, _FACTORY_MARK, True)
    logging.setLogRecordFactory(factory)


def quiet_noisy_loggers(levels: dict[str, int] | None = None) -> None:
    """Lower httpx/httpcore request lines to WARNING (they are one INFO line per HTTP request)."""
    for name, level in (levels or NOISY_LOGGERS).items():
        logging.getLogger(name).setLevel(level)


def setup_logging(
    level: int | str = "INFO", *, fmt: str = DEFAULT_FORMAT, extra_secrets: Iterable[str] = ()
) -> None:
    """Configure the root logger for the project's scripts, with token redaction installed.

    Idempotent: a second call changes the level but adds no second handler.
    """
    install_redaction()
    register_configured_tokens()
    register_secret(*extra_secrets)
    root = logging.getLogger()
    root.setLevel(level)
    if not any(getattr(h, _FACTORY_MARK, False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(fmt))
        handler.addFilter(RedactingFilter())
        setattr(handler, _FACTORY_MARK, True)
        root.addHandler(handler)
    quiet_noisy_loggers()

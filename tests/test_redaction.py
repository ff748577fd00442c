"""Bot tokens never reach a log line, whatever logger or handler writes it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pandas as pd
import pytest

from scanner.notifier import send_alerts
from scanner.results import Hit
from tests.fakes.telegram_server import FakeBotApi, make_token
from utils.config import TelegramConfig
from utils.logging import (
    REDACTED,
    RedactingFilter,
    install_redaction,
    redact,
    register_secret,
    setup_logging,
)

TOKEN = make_token(555555555, "E")
BAD_TOKEN = make_token(666666666, "F")
THIRD_PARTY_LOGGERS = ("httpx", "httpcore", "telegram")


@pytest.fixture
def clean_logging() -> Iterator[None]:
    """Restore the root handlers, logger levels and the record factory after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in THIRD_PARTY_LOGGERS}
    factory = logging.getLogRecordFactory()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)
    logging.setLogRecordFactory(factory)


def capture(logger: logging.Logger) -> io.StringIO:
    """A handler added *after* redaction was installed, as a user configuring logging would."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return buffer


# --- redact() ------------------------------------------------------------------------------------


def test_token_shapes_are_masked_in_text() -> None:
    text = f"GET https://api.telegram.org/bot{TOKEN}/getMe and {TOKEN.replace(':', '%3A')}"
    assert redact(text) == f"GET https://api.telegram.org/bot{REDACTED}/getMe and {REDACTED}"


def test_registered_secret_without_token_shape_is_masked() -> None:
    odd = "9876:" + "short" * 2
    assert redact(odd) == odd
    register_secret(odd)
    assert redact(f"token={odd}") == f"token={REDACTED}"


def test_ordinary_text_is_left_alone() -> None:
    text = "bar 2025-03-20 12:30:00, 12345678 rows, ratio 1:2"
    assert redact(text) == text


# --- the record factory ----------------------------------------------------------------------------


def test_message_args_are_redacted_for_a_handler_added_later(clean_logging: None) -> None:
    install_redaction()
    logger = logging.getLogger("user.own.logger")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    buffer = capture(logger)
    try:
        logger.debug("url %s", f"http://x/bot{TOKEN}/sendMessage")
        logger.info("%(tok)s", {"tok": TOKEN})
    finally:
        logger.handlers.clear()
    out = buffer.getvalue()
    assert TOKEN not in out and out.count(REDACTED) == 2


def test_exception_text_is_redacted(clean_logging: None) -> None:
    install_redaction()
    logger = logging.getLogger("user.exceptions")
    logger.propagate = False
    buffer = capture(logger)
    try:
        try:
            raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")
        except RuntimeError:
            logger.exception("sending failed")
    finally:
        logger.handlers.clear()
    out = buffer.getvalue()
    assert "RuntimeError" in out and REDACTED in out and TOKEN not in out


def test_records_without_secrets_keep_their_args(
    clean_logging: None, caplog: pytest.LogCaptureFixture
) -> None:
    install_redaction()
    with caplog.at_level(logging.INFO):
        logging.getLogger("scanner.test").info("%d hits on %s", 3, "binance_spot")
    [record] = caplog.records
    assert record.args == (3, "binance_spot") and record.getMessage() == "3 hits on binance_spot"


def test_installing_twice_wraps_the_factory_once(clean_logging: None) -> None:
    install_redaction()
    first = logging.getLogRecordFactory()
    install_redaction()
    assert logging.getLogRecordFactory() is first


# --- setup_logging ---------------------------------------------------------------------------------


def test_setup_logging_quiets_httpx_and_adds_one_handler(clean_logging: None) -> None:
    root = logging.getLogger()
    setup_logging("DEBUG")
    setup_logging("INFO")
    ours = [h for h in root.handlers if any(isinstance(f, RedactingFilter) for f in h.filters)]
    assert len(ours) == 1
    assert root.level == logging.INFO
    assert logging.getLogger("httpx").level == logging.WARNING


def test_setup_logging_registers_configured_tokens(
    clean_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    odd = "4242:" + "configured" * 2
    monkeypatch.setenv("SCANNER_TELEGRAM_TOKEN_CONFLUENCE", odd)
    setup_logging()
    assert redact(f"x {odd} y") == f"x {REDACTED} y"


# --- end to end ------------------------------------------------------------------------------------


async def test_no_token_in_any_log_during_a_send_at_debug(
    clean_logging: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Root and httpx/httpcore/telegram at DEBUG, through retries and an invalid token."""
    odd_token = "7777:" + "notashape" * 2  # configured but not token-shaped: masked by registration
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    buffer = capture(root)
    caplog.set_level(logging.DEBUG)
    hit = Hit("breakout_bar", "binance_spot", "1d", "BTCUSDT", pd.Timestamp("2025-03-20", tz="UTC"),
              False, 1.0, 1.0, {})
    surge = Hit("volume_surge", "binance_spot", "1d", "ETHUSDT", pd.Timestamp("2025-03-20", tz="UTC"),
                False, 1.0, 1.0, {})
    confluence = Hit("confluence", "binance_spot", "1d", "SOLUSDT", pd.Timestamp("2025-03-20", tz="UTC"),
                     False, 1.0, 1.0, {})
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        api.add_fault("1", "drop", times=1)
        api.add_fault("2", "retry_after", times=1, retry_after=1)
        cfg = TelegramConfig(
            base_url=api.base_url(),
            tokens={"start_trend": TOKEN, "volume_surge": BAD_TOKEN, "confluence": odd_token},
            users={"alice": "1", "bob": "2"},
        )
        report = await send_alerts([hit, surge, confluence], ["alice", "bob"], config=cfg)
    assert report.sent == 2 and len(report.failures) == 4
    logs = buffer.getvalue() + caplog.text
    assert "HTTP Request: POST" in logs and "Set Bot API URL" in logs  # the risky lines were captured
    for secret in (TOKEN, BAD_TOKEN, odd_token):
        assert secret not in logs
        assert secret.split(":")[1] not in logs
        assert all(secret not in f.reason for f in report.failures)
    assert REDACTED in logs

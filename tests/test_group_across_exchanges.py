"""One alert block per asset hit on several exchanges, end to end (issue 17's grouping).

Two fake exchanges list the same USDT markets; a toy strategy that fires on every bar runs through
the normal multi-exchange scan, which delivers once per run after all exchanges. With grouping on,
each asset's block names both exchanges and each market's hit is still recorded once; with it off,
every market is its own block.
"""

from __future__ import annotations

import pytest

from run_parallel_scanner import run_parallel_exchanges
from scanner import registry
from scanner.cache import KlineCache
from tests.conftest import configure_telegram, toy_strategy_module
from tests.fakes.exchange_server import FakeExchangeServer
from tests.fakes.telegram_server import FakeBotApi, make_token

TOY_MODULE = "every_bar_toy"
TOY_SOURCE = '''
"""Every bar fires (a toy strategy for delivery tests)."""

import numpy as np

from utils.strategy_spec import BOTH, Strategy


def every_bar_panel(o, h, l, c, v) -> dict[str, np.ndarray]:
    """Fires on every bar of every symbol."""
    return {"signal": np.ones(c.shape, dtype=bool)}


STRATEGY = Strategy(
    name="every_bar",
    title="Every Bar",
    channel="volume_surge",
    bars=BOTH,
    min_bars=1,
    panel=every_bar_panel,
    direction="up",
    alert_fields=(("Close", "close", "price"),),
)
'''
TOKEN = make_token(500000002, "G")
CHAT = "4343"
MARKETS = ["binance_spot", "bybit_spot"]


@pytest.fixture
def every_bar(tmp_path, monkeypatch):
    """The toy strategy registered, importable here and in a fresh analysis process."""
    for module in toy_strategy_module(tmp_path, monkeypatch, TOY_MODULE, TOY_SOURCE):
        registry.register(module.STRATEGY)
        yield module


@pytest.mark.parametrize("group", [True, False])
async def test_an_asset_hit_on_two_exchanges_is_one_block_naming_both_when_grouped(
    every_bar, monkeypatch, tmp_path, group
):
    monkeypatch.setenv("SCANNER_STATE_DB", str(tmp_path / "ledger.sqlite3"))
    async with FakeExchangeServer(symbols=4, markets=MARKETS) as server, FakeBotApi(valid_tokens=[TOKEN]) as api:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        configure_telegram(monkeypatch, api.base_url(), {"volume_surge": TOKEN}, {"alice": CHAT})
        shared = set(server.usdt_symbols("binance_spot")) & set(server.usdt_symbols("bybit_spot"))
        result = await run_parallel_exchanges(
            "1d", "every_bar", ",".join(MARKETS), users="alice", send_telegram=True, min_volume_usd=0,
            store=False, cache=KlineCache(), progress=False, group_assets=group,
        )

    assert shared, "the fake lists some markets on both exchanges"
    hit_markets = {(h.exchange, h.symbol) for h in result.hits}
    assert {(m, s) for m in MARKETS for s in shared} <= hit_markets
    assert result.alerts.failures == []
    blocks = _blocks([m.text for m in api.messages_to(CHAT)])
    for symbol in shared:
        mine = [(where, block) for where, block in blocks if f">{symbol}</a></b>" in block.split("\n")[0]]
        if group:
            assert len(mine) == 1, mine
            where, block = mine[0]
            assert where == "several exchanges" and "Exchanges: " in block and all(m in block for m in MARKETS)
        else:
            assert sorted(where for where, _ in mine) == MARKETS, mine
    # every market's hit is accounted for once, grouped or not
    assert result.alerts.sent == len(result.hits)


def _blocks(texts: list[str]) -> list[tuple[str, str]]:
    """(the section's "where" line: an exchange or "several exchanges", block) for every hit block;
    a message holds sections, each a title and "where · timeframe" line, then its blocks."""
    found = []
    for text in texts:
        where = ""
        for chunk in text.split("\n\n"):
            if chunk.startswith("<b><a "):
                found.append((where, chunk))
            else:
                where = chunk.split("\n")[1].split(" · ")[0]
    return found

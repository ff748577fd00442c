"""Vectorised JSON token formatting for candle pages (numpy StringDType, no per-row Python work)."""

from __future__ import annotations

import numpy as np

STR = np.dtypes.StringDType()


def decimal_tokens(units: np.ndarray, decimals: int, *, quoted: bool, fixed: int | None = None) -> np.ndarray:
    """JSON tokens for ``units * 10**-decimals``: trailing zeros stripped, or ``fixed`` decimals."""
    units = np.asarray(units, dtype=np.int64)
    if decimals <= 0:
        text = np.strings.add(units.astype(STR), "0" * -decimals)
        if fixed:
            text = np.strings.add(text, "." + "0" * fixed)
    else:
        ip = (units // 10**decimals).astype(STR)
        frac = np.strings.zfill((units % 10**decimals).astype(STR), decimals)
        if fixed is not None:
            frac = np.strings.add(frac, "0" * max(fixed - decimals, 0))
            text = np.strings.add(np.strings.add(ip, "."), frac)
        else:
            frac = np.strings.rstrip(frac, "0")
            text = np.where(frac == "", ip, np.strings.add(np.strings.add(ip, "."), frac)).astype(STR)
    return quote_tokens(text) if quoted else text


def int_tokens(values: np.ndarray, *, quoted: bool) -> np.ndarray:
    text = np.asarray(values, dtype=np.int64).astype(STR)
    return quote_tokens(text) if quoted else text


def const_tokens(value: str, n: int) -> np.ndarray:
    return np.full(n, value, dtype=STR)


def quote_tokens(text: np.ndarray) -> np.ndarray:
    return np.strings.add(np.strings.add('"', text), '"')


def join_rows(columns: list[np.ndarray]) -> str:
    """``[[c0,c1,...],...]`` from per-column token arrays."""
    if not columns or len(columns[0]) == 0:
        return "[]"
    row = np.strings.add("[", columns[0])
    for col in columns[1:]:
        row = np.strings.add(np.strings.add(row, ","), col)
    return "[" + ",".join(np.strings.add(row, "]").tolist()) + "]"


def join_objects(columns: dict[str, np.ndarray]) -> str:
    """``[{"k":v,...},...]`` from per-key token arrays."""
    keys = list(columns)
    if not keys or len(columns[keys[0]]) == 0:
        return "[]"
    row = np.strings.add('{"' + keys[0] + '":', columns[keys[0]])
    for key in keys[1:]:
        row = np.strings.add(np.strings.add(row, ',"' + key + '":'), columns[key])
    return "[" + ",".join(np.strings.add(row, "}").tolist()) + "]"


def join_columns(columns: dict[str, np.ndarray]) -> str:
    """``{"k":[v,...],...}`` (MEXC futures' column-oriented candles)."""
    return "{" + ",".join(f'"{k}":[' + ",".join(v.tolist()) + "]" for k, v in columns.items()) + "}"

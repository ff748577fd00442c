"""The four custom detectors (spec sections 5-8): panel cores, whole-series views, seed wrappers."""

from custom_strategies.confluence import confluence_panel, confluence_series, detect_confluence
from custom_strategies.pin_down import detect_pin_down, pin_down_panel, pin_down_series
from custom_strategies.volume_surge import detect_volume_surge, volume_surge_panel, volume_surge_series
from custom_strategies.weak_uptrend import detect_weak_uptrend, weak_uptrend_panel, weak_uptrend_series

__all__ = [
    "confluence_panel",
    "confluence_series",
    "detect_confluence",
    "detect_pin_down",
    "detect_volume_surge",
    "detect_weak_uptrend",
    "pin_down_panel",
    "pin_down_series",
    "volume_surge_panel",
    "volume_surge_series",
    "weak_uptrend_panel",
    "weak_uptrend_series",
]

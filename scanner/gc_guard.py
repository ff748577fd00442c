"""Former home of the full-collection pause; it lives in ``scanner.runtime`` now (one module for the
runtime machinery, whose docstring says what each trick buys). These names stay importable."""

from __future__ import annotations

from scanner.runtime import PAUSED_THRESHOLD, active_scans, full_collections_paused, scan_running

__all__ = ["PAUSED_THRESHOLD", "active_scans", "full_collections_paused", "scan_running"]

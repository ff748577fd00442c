"""The ``scanner`` command (also ``python -m scanner``): one entry, a subcommand per job.

    scanner scan 1d all demo                 # the positional command line of run_parallel_scanner.py
    scanner serve | status | quality | store # each from its own module, loaded on use
    scanner --version

Each subcommand is a ``main(argv) -> int`` found by a ``"module:function"`` path and imported only
when called, so ``scanner --help`` stays fast and a build without a subcommand's module says so in
one line (exit 2) instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from scanner import __version__

PROG = "scanner"
NOT_AVAILABLE = 2
# name -> ("module:function" taking argv and returning the exit status, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("scanner.cli:scan_main", "scan exchanges x timeframes (the CLI of run_parallel_scanner.py)"),
    "serve": ("scanner.serve:main", "keep scanning at every bar close"),
    "status": ("scanner.serve:status_main", "what the serve loop did last"),
    "quality": ("scanner.quality:main", "signal-quality report of past alerts"),
    "store": ("scanner.store_cli:main", "inspect or prune the candle store"),
}

EXIT_CODES_HELP = """exit codes:
  0    everything scanned and every alert delivered
  1    the scan finished, but an exchange x timeframe failed or alerts are pending (read the summary)
  2    bad arguments or configuration; nothing was scanned
  130  interrupted (Ctrl-C); the results finished so far are printed"""

ENVIRONMENT_HELP = """environment:
  SCANNER_CONFIG                   config file to read (instead of the lookup below)
  SCANNER_STATE_DB                 alert ledger (SQLite); its directory holds the scanner's state
  SCANNER_TELEGRAM_TOKEN_<CHANNEL> bot token of a channel, e.g. SCANNER_TELEGRAM_TOKEN_START_TREND
  SCANNER_TELEGRAM_CHAT_<USER>     chat id of a user, e.g. SCANNER_TELEGRAM_CHAT_DEFAULT
  SCANNER_TELEGRAM_BASE_URL        Bot API base URL (http or https)
  SCANNER_<MARKET>_BASE_URL        exchange host, e.g. SCANNER_BINANCE_SPOT_BASE_URL
  SCANNER_<BUDGET>_RATE_LIMIT      rate limit "capacity/window_seconds[/margin]"
  SCANNER_ANALYSIS                 process (default) or thread
  DISABLE_PROGRESS=1               no progress bars (they show only when stderr is a terminal)
  XDG_STATE_HOME, XDG_CONFIG_HOME  move the default state and config directories"""


def paths_help() -> str:
    """Where the config file is looked for and where state lives, as ``--help`` shows it."""
    from utils.paths import LOCAL_CONFIG_NAME, user_config_file, user_state_dir

    return (
        "config file (bot tokens, chat ids, hosts; layout in scanner.example.toml), the first found of:\n"
        f"  $SCANNER_CONFIG, ./{LOCAL_CONFIG_NAME}, {user_config_file()}\n"
        f"state (alert ledger, candle store): {user_state_dir()} (or the directory of $SCANNER_STATE_DB)"
    )


def scan_main(argv: Sequence[str]) -> int:
    """``scanner scan ...``: exactly the positional command line of ``run_parallel_scanner.py``."""
    import run_parallel_scanner

    return run_parallel_scanner.main(list(argv), prog=f"{PROG} scan")


def build_parser() -> argparse.ArgumentParser:
    commands = "\n".join(f"  {name:<8} {text}" for name, (_, text) in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Crypto market scanner: VSA and custom patterns, alerts on Telegram.",
        usage=f"{PROG} [-h] [--version] COMMAND [ARGS...]",
        epilog=(
            f"commands:\n{commands}\n\n`{PROG} COMMAND --help` describes a command's arguments.\n"
            f"example: {PROG} scan 1d all demo\n\n{EXIT_CODES_HELP}\n\n{ENVIRONMENT_HELP}\n\n{paths_help()}"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("command", metavar="COMMAND", help=f"one of: {', '.join(SUBCOMMANDS)}")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def load(command: str) -> Callable[[Sequence[str]], int] | None:
    """The function behind ``command``, or None when this build does not have its module."""
    module_name, _, function_name = SUBCOMMANDS[command][0].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            return None
        raise
    return getattr(module, function_name, None)


def _exit_status(code: object) -> int:
    """A ``SystemExit`` code as an exit status (argparse exits 0 for --help, 2 for bad arguments)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``scanner`` and ``python -m scanner``; returns the exit status."""
    parser = build_parser()
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        if not argv:
            parser.error(f"name a command: {', '.join(SUBCOMMANDS)} (e.g. {PROG} scan 1d all demo)")
        args = parser.parse_args(argv)
        if args.command not in SUBCOMMANDS:
            parser.error(f"unknown command {args.command!r}; valid commands: {', '.join(SUBCOMMANDS)}")
        function = load(args.command)
        if function is None:
            print(f"`{PROG} {args.command}` is not available in this build", file=sys.stderr)
            return NOT_AVAILABLE
        return int(function(args.args) or 0)
    except SystemExit as exc:
        return _exit_status(exc.code)

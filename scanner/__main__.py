"""``python -m scanner``: the same command as ``scanner`` (see scanner.cli)."""

import sys

from scanner.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m nst_utils COMMAND ...`` and the ``nst`` command: see :mod:`nst_utils.cli`.

Importing the command line pulls in PyTorch (seconds); Ctrl-C during that start-up ends
with one line, like Ctrl-C later on.
"""

import sys


def run() -> int:
    """Entry point: import the command line, then run it; returns the exit code."""
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("nst: interrupted while starting; nothing was done.", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())

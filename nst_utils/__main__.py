"""``python -m nst_utils stylize ...``: see :mod:`nst_utils.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

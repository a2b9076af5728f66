"""``python -m lumachrome``: the same as the ``lumachrome`` command."""

import sys

from lumachrome.cli import main

if __name__ == "__main__":
    sys.exit(main())

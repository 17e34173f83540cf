"""``python -m gconv``: the ``gconv`` command (:mod:`gconv.cli`)."""

import sys

from gconv.cli import main

if __name__ == "__main__":
    sys.exit(main())

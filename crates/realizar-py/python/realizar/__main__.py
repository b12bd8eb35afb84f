"""``python -m realizar serve ...``: the same as the ``realizar`` console script."""

import sys

from realizar.cli import main

sys.exit(main())

"""``python -m trueno.bench``: the command-line entry point."""

import sys

from trueno.bench import main

sys.exit(main())

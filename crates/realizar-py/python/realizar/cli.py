"""The ``realizar`` command: ``realizar serve --model [NAME=]PATH ...``.

The command line, its defaults and its help are Rust's (``realizar::server::cli``, the
same code as the native ``realizar`` binary); this file hands ``sys.argv`` over, and the
server runs with the GIL released for its whole lifetime.
"""

from __future__ import annotations

import sys

from realizar import _realizar


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        return _realizar.cli_main(list(args))
    except KeyboardInterrupt:
        # The server already shut down gracefully on SIGINT; Python saw the signal too.
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``realizar`` command: ``realizar serve --model PATH [--host 127.0.0.1] [--port 8080]``.

The server itself is Rust (axum on tokio, inside the extension module); this file only
parses the command line and hands over, with the GIL released for the server's lifetime.
"""

from __future__ import annotations

import argparse
import sys

from realizar import _realizar


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="realizar", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve a model over HTTP (MLflow /invocations or OpenAI /v1/embeddings)",
    )
    serve.add_argument(
        "--model",
        required=True,
        help="a file written by realizar.export_sklearn, or a sentence-encoder directory",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port, 0 for any free one")
    serve.add_argument("--name", default=None, help="model name reported by /v1/models")
    serve.add_argument("--max-batch", type=int, default=4096, help="most rows/texts per request")
    serve.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024)
    serve.add_argument("--timeout-secs", type=float, default=30.0, help="per-request deadline")
    serve.add_argument("--threads", type=int, default=0, help="worker threads, 0 = one per CPU")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        print(f"realizar: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        _realizar.serve(
            args.model,
            args.host,
            args.port,
            name=args.name,
            max_batch=args.max_batch,
            max_body_bytes=args.max_body_bytes,
            timeout_secs=args.timeout_secs,
            threads=args.threads,
        )
    except KeyboardInterrupt:
        # The server already shut down gracefully on SIGINT; Python saw the signal too.
        return 0
    except (RuntimeError, OSError, ValueError) as e:
        print(f"realizar: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

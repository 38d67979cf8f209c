"""``archcast serve``: the team latency service (HTTP API + web page) over one store.

Settings come from flags, else ``ARCHCAST_SERVE_*`` / ``ARCHCAST_DB`` environment variables (see
:mod:`archcast.service.settings`). ``--new-token NAME --scope read|write`` prints a new API token
once (the store keeps only its SHA-256) and exits; ``--list-tokens`` and ``--revoke-token`` manage them.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from archcast.cli.options import DB_HELP


def cmd_serve(args: argparse.Namespace) -> int:
    from archcast.service.settings import ServeSettings

    settings = ServeSettings.from_env(host=args.host, port=args.port, db=args.db, read_access=args.read_access,
                                      max_upload_mb=args.max_upload_mb, processes=args.processes,
                                      threads=args.threads, cache_size=args.cache_size,
                                      measured_ttl_s=args.measured_ttl, summary_ttl_s=args.summary_ttl)
    if args.new_token or args.list_tokens or args.revoke_token:
        return _tokens(args, settings)
    import uvicorn

    from archcast.store import Store

    Store(settings.db).close()  # create or upgrade the store once, before any worker starts
    os.environ.update(settings.to_env())  # worker processes read their settings from here
    print(f"archcast serve on http://{settings.host}:{settings.port} (store {settings.db or 'the per-user store'}, "
          f"{settings.processes} process(es) x {settings.prediction_threads} prediction threads, "
          f"reads {settings.read_access}); API docs at /docs", file=sys.stderr)
    uvicorn.run("archcast.service.app:app_from_env", factory=True, host=settings.host, port=settings.port,
                workers=settings.processes if settings.processes > 1 else None, log_level=args.log_level,
                access_log=args.access_log, timeout_graceful_shutdown=5)
    return 0


def _tokens(args: argparse.Namespace, settings: Any) -> int:
    from archcast.service.auth import create_token
    from archcast.store import Store

    store = Store(settings.db)
    if args.new_token:
        token = create_token(store, args.new_token, args.scope)
        print(token)
        print(f"token {args.new_token!r} ({args.scope}) stored hashed in {store.location}; it is shown only now",
              file=sys.stderr)
    elif args.revoke_token:
        if not store.revoke_token(args.revoke_token):
            from archcast.errors import InvalidInputError

            raise InvalidInputError(f"no token named {args.revoke_token!r} in {store.location}")
        print(f"revoked {args.revoke_token!r}")
    else:
        for t in store.tokens():
            print(f"{t['name']}\t{t['scope']}\t{t['created']}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``serve``."""
    from archcast.service.settings import READ_ACCESS

    s = subparsers.add_parser("serve", help="the team latency service: HTTP API and web page over one store",
                              description="Serve predictions, the measurement store and a web page over HTTP. "
                                          "Writes need a token (--new-token NAME --scope write).")
    s.add_argument("--host", help="address to listen on (default 127.0.0.1; $ARCHCAST_SERVE_HOST)")
    s.add_argument("--port", type=int, help="port (default 8000; $ARCHCAST_SERVE_PORT)")
    s.add_argument("--db", help=DB_HELP + "; created when missing")
    s.add_argument("--read-access", choices=READ_ACCESS, help="reads open to all (default) or token only")
    s.add_argument("--max-upload-mb", type=float, help="largest upload accepted (default 200)")
    s.add_argument("--processes", type=int, help="server processes (default 1)")
    s.add_argument("--threads", type=int, help="prediction threads per process (default: cores / processes)")
    s.add_argument("--cache-size", type=int, help="parsed graphs and predictions kept (default 256)")
    s.add_argument("--measured-ttl", type=float, help="seconds a store lookup is reused (default 1)")
    s.add_argument("--summary-ttl", type=float, help="seconds the store's counts are reused (default 5)")
    s.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))
    s.add_argument("--access-log", action="store_true", help="log every request")
    t = s.add_mutually_exclusive_group()
    t.add_argument("--new-token", metavar="NAME", help="make an API token, print it once, and exit")
    t.add_argument("--list-tokens", action="store_true", help="list token names and scopes, and exit")
    t.add_argument("--revoke-token", metavar="NAME", help="delete a token, and exit")
    s.add_argument("--scope", choices=("read", "write"), default="read", help="scope of --new-token (default read)")
    s.set_defaults(func=cmd_serve)

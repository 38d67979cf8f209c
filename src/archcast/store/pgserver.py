"""A throwaway PostgreSQL server in a temporary directory, for tests and load tests.

Uses the server binaries of Debian's ``postgresql`` package (``/usr/lib/postgresql/<v>/bin``; or
``initdb``/``pg_ctl`` on PATH): ``initdb`` with trust authentication, then ``pg_ctl start`` on
127.0.0.1 and a free port, the socket in the same directory. PostgreSQL refuses to run as root,
so under root the server runs as the ``postgres`` user (created by that package). ``durable=False``
turns fsync off (fast tests; a killed *client* loses nothing either way).

>>> with PgServer() as pg:                      # doctest: +SKIP
...     Store(pg.create_database("t1"))
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from archcast.store.errors import StoreError

SERVER_USER = "postgres"  # who runs the server when we are root
SUPERUSER = "archcast"  # the database superuser initdb creates (trust auth on 127.0.0.1 only)


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (newest Debian version first), or None."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version_key(p.parent.name),
                      reverse=True)
    for d in versions:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).resolve().parent == Path(pg_ctl).resolve().parent:
        return Path(initdb).resolve().parent
    return None


def missing_reason() -> str | None:
    """Why a server cannot be started here (None: it can). Tests skip with this reason."""
    if find_bin_dir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the PostgreSQL driver psycopg 3 is not installed: pip install 'psycopg[binary]'"
    return None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in name.split(".") if x.isdigit()) or (0,)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """One PostgreSQL server in its own temporary directory; ``stop()`` removes everything."""

    def __init__(self, *, durable: bool = False, port: int | None = None) -> None:
        self.durable = durable
        self.port = port
        self.root: Path | None = None
        self._bin = find_bin_dir()
        self._n = 0

    # ------------------------------------------------------------------ lifecycle
    def _run(self, *args: str, **kw: Any) -> subprocess.CompletedProcess:
        user = {"user": SERVER_USER, "group": SERVER_USER} if os.geteuid() == 0 else {}
        return subprocess.run(list(args), capture_output=True, text=True, timeout=120, **user, **kw)

    def start(self) -> "PgServer":
        reason = missing_reason()
        if reason:
            raise StoreError(f"cannot start PostgreSQL: {reason}")
        self.root = Path(tempfile.mkdtemp(prefix="archcast-pg-"))
        if os.geteuid() == 0:
            pw = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        data = self.root / "data"
        r = self._run(str(self._bin / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                      "--locale=C", "--no-sync", cwd=str(self.root))
        if r.returncode != 0:
            self._cleanup()
            raise StoreError(f"initdb failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        self.port = self.port or _free_port()
        opts = [f"-p {self.port}", "-h 127.0.0.1", f"-k {self.root}", "-c max_connections=200",
                "-c shared_buffers=64MB"]
        if not self.durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        r = self._run(str(self._bin / "pg_ctl"), "-D", str(data), "-l", str(self.root / "server.log"), "-w",
                      "-t", "60", "-o", " ".join(opts), "start", cwd=str(self.root))
        if r.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace") if (self.root / "server.log").exists() else ""
            self._cleanup()
            raise StoreError(f"pg_ctl start failed: {(r.stderr or r.stdout).strip()} {log.strip()[-400:]}")
        return self

    def stop(self) -> None:
        """Stop the server (immediate shutdown) and delete its directory."""
        if self.root is None:
            return
        self._run(str(self._bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop",
                  cwd=str(self.root))
        self._cleanup()

    def _cleanup(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> "PgServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ databases
    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL of ``dbname`` on this server (psycopg 3)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (default: a fresh numbered name); returns its URL."""
        import psycopg

        if name is None:
            self._n += 1
            name = f"t{os.getpid()}_{self._n}_{int(time.time() * 1000) % 100000}"
        if not name.replace("_", "").isalnum():
            raise StoreError(f"database name must be letters, digits and _; got {name!r}")
        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


__all__ = ["PgServer", "find_bin_dir", "missing_reason"]

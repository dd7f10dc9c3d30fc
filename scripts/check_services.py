"""Fail with instructions (not a silent SQLite fallback) when PostgreSQL or Redis is down."""

import os
import socket
import sys
from urllib.parse import urlparse

HELP = """{what} is not reachable at {url}.
The test suite needs real PostgreSQL and Redis. Start them (Debian/Ubuntu):
  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
or set DATABASE_URL / REDIS_URL to running servers, then run `make test` again."""


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def main() -> int:
    failed = False
    for what, name, port in (("PostgreSQL", "DATABASE_URL", 5432), ("Redis", "REDIS_URL", 6379)):
        url = os.environ[name]
        if not reachable(url, port):
            print(HELP.format(what=what, url=url), file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

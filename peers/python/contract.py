"""The parts of the suite's contract (docs/contract.md) every Python peer shares: the
configuration from the environment, the /test query's rules, the statements and the bodies.

What differs between the peers -- how a request waits for PostgreSQL or the upstream -- stays in
each peer's own file, which is the point of reading them side by side.
"""

import hashlib
import json
import os
import random
from urllib.parse import unquote

MAX_DELAY_MS = 10_000
MAX_ID = 2**31 - 1
MAX_WORK = 100_000
MAX_FANOUT = 16

# The two statements of the db backend: one round trip, one pg_stat_statements call.
SELECT_ROW = "SELECT a, b FROM test WHERE a = $1"
SELECT_ROW_AFTER_SLEEP = "SELECT a, b FROM test, pg_sleep($2) WHERE a = $1"

HELLO = b'{"message":"Hello, World!"}'
HEALTH_OK = b'{"status":"ok"}'


def _env_int(name, default, low=0, high=None):
    text = os.environ.get(name, str(default))
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        raise SystemExit(f"{name}={text!r}: give a whole number from {low}" + (f" to {high}" if high else ""))
    return int(text)


class Config:
    """The targets' flags that matter to a peer, from the same environment variables."""

    def __init__(self, app):
        self.app = app
        self.database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        self.upstream_url = os.environ.get("UPSTREAM_URL", "http://127.0.0.1:8090/upstream")
        self.backend = os.environ.get("BACKEND", "db")
        if self.backend not in ("db", "upstream"):
            raise SystemExit(f"BACKEND={self.backend!r}: give db or upstream")
        self.delay_ms = _env_int("DELAY_MS", 0, 0, MAX_DELAY_MS)
        self.rows = _env_int("ROWS", 1_000_000, 1, MAX_ID)
        self.work = _env_int("WORK", 0, 0, MAX_WORK)
        # This process's share of the DB sessions (each worker process has its own pool).
        self.pool_size = _env_int("POOL_SIZE", 16, 1)
        self.pool_timeout_s = _env_int("POOL_TIMEOUT_MS", 5000, 1) / 1000


class BadRequest(Exception):
    """A 400: the message is the one line of its body."""


def parse_test_query(query):
    """The /test query as (delay_ms, id, backend, work, fanout), each None when absent; BadRequest when a
    parameter is unknown, repeated, or has a bad value."""
    seen = {}
    for segment in query.split("&") if query else ():
        if not segment:
            continue
        if "=" not in segment:
            raise BadRequest(f"parameter {segment!r} has no value; write name=value")
        name, value = (unquote(part) for part in segment.split("=", 1))
        if name not in ("delay_ms", "id", "backend", "work", "fanout"):
            raise BadRequest(f"unknown parameter {name!r}; /test takes delay_ms, id, backend, work and fanout")
        if name in seen:
            raise BadRequest(f"parameter {name} is repeated; give it once")
        seen[name] = value
    delay = seen.get("delay_ms")
    if delay is not None and not (_digits(delay) and int(delay) <= MAX_DELAY_MS):
        raise BadRequest(f"delay_ms must be a whole number from 0 to {MAX_DELAY_MS}, got {delay!r}")
    row = seen.get("id")
    if row is not None and not (_digits(row) and 1 <= int(row) <= MAX_ID):
        raise BadRequest(f"id must be a whole number from 1 to {MAX_ID}, got {row!r}")
    backend = seen.get("backend")
    if backend is not None and backend not in ("db", "upstream"):
        raise BadRequest(f"backend must be db or upstream, got {backend!r}")
    work = seen.get("work")
    if work is not None and not (_digits(work) and int(work) <= MAX_WORK):
        raise BadRequest(f"work must be a whole number from 0 to {MAX_WORK}, got {work!r}")
    fanout = seen.get("fanout")
    if fanout is not None and not (_digits(fanout) and 1 <= int(fanout) <= MAX_FANOUT):
        raise BadRequest(f"fanout must be a whole number from 1 to {MAX_FANOUT}, got {fanout!r}")
    return (
        None if delay is None else int(delay),
        None if row is None else int(row),
        backend,
        None if work is None else int(work),
        None if fanout is None else int(fanout),
    )


def _digits(value):
    return 0 < len(value) <= 19 and value.isascii() and value.isdigit()


def no_parameters(query, path):
    """BadRequest when /json or /health is given a parameter."""
    for segment in query.split("&") if query else ():
        if segment:
            name = unquote(segment.split("=", 1)[0])
            raise BadRequest(f"unknown parameter {name!r}; {path} takes none")


class Work:
    """What a /test request asks for, with the defaults filled in."""

    def __init__(self, config, query):
        delay, row, backend, work, fanout = parse_test_query(query)
        self.delay_ms = config.delay_ms if delay is None else delay
        self.id = random.randint(1, config.rows) if row is None else row
        self.backend = backend or config.backend
        self.work = config.work if work is None else work
        self.fanout = 1 if fanout is None else fanout
        if self.fanout > 1 and self.backend == "db":
            raise BadRequest("fanout is for the upstream backend (backend=upstream); the db backend fetches one row")

    def statement(self):
        """The statement and its arguments ($1 the id, $2 the sleep in seconds)."""
        if self.delay_ms == 0:
            return SELECT_ROW, (self.id,)
        return SELECT_ROW_AFTER_SLEEP, (self.id, self.delay_ms / 1000)


def row_body(a, b):
    """The row, byte for byte: a zero-padded to 10 digits."""
    return b'{"a":"%010d","b":%s}' % (a, json.dumps(b).encode())


def upstream_body(status, length):
    return b'{"status":%d,"bytes":%d}' % (status, length)


def pages_body(pages):
    """The body of fanout=K's pages, each (status, length): with K = 1 the page's, else
    {"status":S,"bytes":TOTAL,"fanout":K} (S: 200, or the first other status)."""
    status = next((s for s, _ in pages if s != 200), 200)
    total = sum(length for _, length in pages)
    if len(pages) == 1:
        return upstream_body(status, total)
    return b'{"status":%d,"bytes":%d,"fanout":%d}' % (status, total, len(pages))


def with_work(body, n):
    """The body after n units of work, in the request's own thread, greenlet or task:
    SHA-256 chained n times from the body, each round after the first over the last digest
    repeated to 1 KiB; its hex the last field (docs/contract.md, "Work per request")."""
    if n == 0:
        return body
    digest = hashlib.sha256(body).digest()
    for _ in range(n - 1):
        digest = hashlib.sha256(digest * 32).digest()
    return body[:-1] + b',"work":"' + digest.hex().encode() + b'"}'


def error_body(message):
    return json.dumps({"error": message}, separators=(",", ":")).encode()


def upstream_target(config, delay_ms):
    """The upstream URL with this request's delay."""
    joiner = "&" if "?" in config.upstream_url else "?"
    return f"{config.upstream_url}{joiner}delay_ms={delay_ms}"


def psycopg_statement(statement):
    """The statement in psycopg2's placeholders (%s), which psycopg2 fills in on the client:
    one simple query per request, one round trip."""
    return statement.replace("$2", "%(sleep)s").replace("$1", "%(id)s")


def psycopg_arguments(args):
    return {"id": args[0], "sleep": args[1] if len(args) > 1 else None}


class Unavailable(Exception):
    """A 503: the database refused, or no pooled connection came in time."""


def first_line(error):
    """An exception's message in one line, or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

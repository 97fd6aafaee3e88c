"""flask-sync: Flask on gunicorn's sync workers, as Paterson and Grinberg ran it.

- Threads: one process per worker (`--workers`, 19 in Grinberg's runs), one thread each. A
  worker serves one request, start to finish, then closes the connection (gunicorn's sync
  worker has no keep-alive), like the suite's sync-pool.
- Where a request waits: in its worker's blocking read of the PostgreSQL socket (psycopg2) or
  of the upstream's (urllib3). Nothing else runs in that process meanwhile.
- What bounds it: the workers. At most `--workers` requests at a time: the harness states its
  model as pool:W. Each worker holds one DB connection, opened on its first request and
  opened again after a failure.
- Rust counterpart: sync-pool.
"""

import psycopg2
import urllib3

import contract
import flask_common

config = contract.Config("flask-sync")
_db = None


def query_row(statement, args):
    """The row, on this worker's connection: opened on first use, and again after a failure."""
    global _db
    try:
        if _db is None or _db.closed:
            _db = psycopg2.connect(config.database_url, application_name=config.app)
            _db.autocommit = True
        with _db.cursor() as cursor:
            cursor.execute(statement, args)
            return cursor.fetchone()
    except psycopg2.Error as e:
        _db = None
        raise contract.Unavailable(f"database unavailable: {contract.first_line(e)}") from e


# One worker, one request at a time: one connection to each backend is all it can use.
app = flask_common.make_app(config, urllib3.PoolManager(maxsize=1, retries=False), query_row)

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
from flask import Flask, Response, request

import contract

config = contract.Config("flask-sync")
app = Flask(__name__)
# One worker, one request at a time: one connection to each backend is all it can use.
upstream = urllib3.PoolManager(maxsize=1, retries=False)
_db = None


def reply(status, body):
    return Response(body, status=status, content_type="application/json")


def db():
    """This worker's connection, opened on first use and after a failure."""
    global _db
    if _db is None or _db.closed:
        _db = psycopg2.connect(config.database_url, application_name=config.app)
        _db.autocommit = True
    return _db


@app.get("/json")
def json_endpoint():
    contract.no_parameters(request.query_string.decode("latin-1"), "/json")
    return reply(200, contract.HELLO)


@app.get("/health")
def health():
    contract.no_parameters(request.query_string.decode("latin-1"), "/health")
    return reply(200, contract.HEALTH_OK)


@app.get("/test")
def test():
    work = contract.Work(config, request.query_string.decode("latin-1"))
    if work.backend == "upstream":
        try:
            page = upstream.request(
                "GET",
                contract.upstream_target(config, work.delay_ms),
                timeout=work.delay_ms / 1000 + 3,
            )
        except urllib3.exceptions.TimeoutError:
            return reply(504, contract.error_body("upstream did not answer in time"))
        except urllib3.exceptions.HTTPError as e:
            return reply(502, contract.error_body(f"upstream unreachable: {type(e).__name__}"))
        return reply(200, contract.upstream_body(page.status, len(page.data)))
    statement, args = work.statement()
    try:
        with db().cursor() as cursor:
            cursor.execute(contract.psycopg_statement(statement), contract.psycopg_arguments(args))
            row = cursor.fetchone()
    except psycopg2.Error as e:
        global _db
        _db = None
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return reply(503, contract.error_body(f"database unavailable: {message}"))
    if row is None:
        return reply(404, contract.error_body(f"no row with id {work.id}"))
    return reply(200, contract.row_body(*row))


@app.errorhandler(contract.BadRequest)
def bad_request(e):
    return reply(400, contract.error_body(str(e)))


@app.errorhandler(404)
def not_found(e):
    return reply(404, contract.error_body(f"no route for {request.path}"))


@app.errorhandler(405)
def not_allowed(e):
    response = reply(405, contract.error_body(f"method {request.method} not allowed"))
    response.headers["Allow"] = "GET"
    return response

"""flask-gevent: Flask on gunicorn's gevent worker, psycopg2 made cooperative (psycogreen).

- Threads: `--workers` processes (6 in Grinberg's runs), each one OS thread running a gevent
  hub and one greenlet per connection (up to gunicorn's `--worker-connections`, 1000).
- Where a request waits: its greenlet yields to the hub at every socket read, psycopg2's
  included (psycogreen's wait callback), and the hub runs another greenlet meanwhile. Code
  that blocks without yielding stops the whole process: the mistake users found in the
  articles' greenlet servers.
- What bounds it: each process's pool of DB connections (`POOL_SIZE`, the process's share of
  the sessions). A request waits for a free connection up to `POOL_TIMEOUT_MS`, then 503. The
  harness states its model as pool:(processes x pool). The upstream has no such bound.
- Rust counterpart: may-green.
"""

import queue

import psycogreen.gevent
import psycopg2
import urllib3
from flask import Flask, Response, request

import contract

psycogreen.gevent.patch_psycopg()

config = contract.Config("flask-gevent")
app = Flask(__name__)
upstream = urllib3.PoolManager(maxsize=1000, retries=False)


class Pool:
    """Up to `size` connections, opened as needed. The queue holds one item per slot: an
    idle connection, or None for a slot not yet connected. A request waits for an item
    (cooperatively: gunicorn's gevent worker has patched `queue`) up to the pool timeout;
    idle connections are on top, so the pool opens no more than the load needs."""

    def __init__(self, size, timeout_s):
        self.items = queue.LifoQueue()
        for _ in range(size):
            self.items.put(None)
        self.timeout_s = timeout_s

    def get(self):
        connection = self.items.get(timeout=self.timeout_s)
        if connection is not None:
            return connection
        try:
            connection = psycopg2.connect(config.database_url, application_name=config.app)
        except BaseException:
            self.items.put(None)
            raise
        connection.autocommit = True
        return connection

    def put(self, connection, broken=False):
        if broken:
            connection.close()
            connection = None
        self.items.put(connection)


pool = Pool(config.pool_size, config.pool_timeout_s)


def reply(status, body):
    return Response(body, status=status, content_type="application/json")


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
        connection = pool.get()
    except queue.Empty:
        return reply(503, contract.error_body("no free DB connection within the pool timeout"))
    except psycopg2.Error as e:
        return reply(503, contract.error_body(f"database unavailable: {first_line(e)}"))
    try:
        with connection.cursor() as cursor:
            cursor.execute(contract.psycopg_statement(statement), contract.psycopg_arguments(args))
            row = cursor.fetchone()
    except psycopg2.Error as e:
        pool.put(connection, broken=True)
        return reply(503, contract.error_body(f"database unavailable: {first_line(e)}"))
    pool.put(connection)
    if row is None:
        return reply(404, contract.error_body(f"no row with id {work.id}"))
    return reply(200, contract.row_body(*row))


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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

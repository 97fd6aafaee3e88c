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

import gevent
import psycogreen.gevent
import psycopg2
import urllib3

import contract
import flask_common

psycogreen.gevent.patch_psycopg()

config = contract.Config("flask-gevent")


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


def query_row(statement, args):
    """The row, on a pooled connection; this greenlet yields while it waits for one, and
    while PostgreSQL answers."""
    try:
        connection = pool.get()
    except queue.Empty:
        raise contract.Unavailable("no free DB connection within the pool timeout") from None
    except psycopg2.Error as e:
        raise contract.Unavailable(f"database unavailable: {contract.first_line(e)}") from e
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, args)
            row = cursor.fetchone()
    except psycopg2.Error as e:
        pool.put(connection, broken=True)
        raise contract.Unavailable(f"database unavailable: {contract.first_line(e)}") from e
    pool.put(connection)
    return row


def greenlets(calls):
    """fanout=K as gevent code makes it: a greenlet per fetch, joined; each yields to the hub
    at its socket, so the K waits overlap."""
    spawned = [gevent.spawn(call) for call in calls]
    gevent.joinall(spawned)
    return [greenlet.get() for greenlet in spawned]


# A greenlet per connection: the upstream pool keeps as many as they use.
app = flask_common.make_app(
    config, urllib3.PoolManager(maxsize=1000, retries=False), query_row, greenlets
)

"""What the two Flask peers share: the routes, the upstream fetch and the contract's errors.
Each peer passes in how a request gets at the database and the upstream, which is where the
models differ (flask_sync.py: one connection per worker process; flask_gevent.py: a pool per
process that greenlets wait on)."""

import urllib3
from flask import Flask, Response, request

import contract


def reply(status, body):
    return Response(body, status=status, content_type="application/json")


def one_after_another(calls):
    """fanout=K as sync code makes it: each fetch after the last (the first failure ends it)."""
    return [call() for call in calls]


def make_app(config, upstream, query_row, together=one_after_another):
    """The app: `upstream` is a urllib3 pool manager; `query_row(statement, args)` returns the
    row (a, b) or None, or raises contract.Unavailable; `together(calls)` makes fanout=K's
    fetches and returns their results (or raises the first failure)."""
    app = Flask(__name__)

    def query():
        return request.query_string.decode("latin-1")

    @app.get("/json")
    def json_endpoint():
        contract.no_parameters(query(), "/json")
        return reply(200, contract.HELLO)

    @app.get("/health")
    def health():
        contract.no_parameters(query(), "/health")
        return reply(200, contract.HEALTH_OK)

    @app.get("/test")
    def test():
        work = contract.Work(config, query())
        if work.backend == "upstream":

            def fetch():
                page = upstream.request(
                    "GET",
                    contract.upstream_target(config, work.delay_ms),
                    timeout=work.delay_ms / 1000 + 3,
                )
                return page.status, len(page.data)

            try:
                pages = together([fetch] * work.fanout)
            except urllib3.exceptions.TimeoutError:
                return reply(504, contract.error_body("upstream did not answer in time"))
            except urllib3.exceptions.HTTPError as e:
                return reply(502, contract.error_body(f"upstream unreachable: {type(e).__name__}"))
            return reply(200, contract.with_work(contract.pages_body(pages), work.work))
        statement, args = work.statement()
        try:
            row = query_row(contract.psycopg_statement(statement), contract.psycopg_arguments(args))
        except contract.Unavailable as e:
            return reply(503, contract.error_body(str(e)))
        if row is None:
            return reply(404, contract.error_body(f"no row with id {work.id}"))
        # The work runs on the request's thread (gunicorn sync) or greenlet (gevent: hashlib
        # never yields, so the process's other greenlets wait).
        return reply(200, contract.with_work(contract.row_body(*row), work.work))

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

    return app

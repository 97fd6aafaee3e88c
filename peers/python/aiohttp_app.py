"""aiohttp: aiohttp.web with asyncpg, on gunicorn's aiohttp worker with uvloop.

- Threads: `--workers` processes (6 in Grinberg's runs), each one OS thread running one
  asyncio event loop (uvloop: the articles' aiohttp without it was a mistake users found), one
  task per request.
- Where a request waits: its task awaits asyncpg's or aiohttp's client socket; the loop runs
  other tasks meanwhile. Any CPU work in a handler holds up every task of its process.
- What bounds it: each process's asyncpg pool (`POOL_SIZE`, the process's share of the
  sessions); a request waits for a connection up to `POOL_TIMEOUT_MS`, then 503. The harness
  states its model as pool:(processes x pool). The upstream has no such bound.
- asyncpg's pool resets a connection on every release (`RESET ALL` and three more
  statements): four statements per request instead of the contract's one, and a fraction of
  the throughput. A read-only app needs no reset, so it is turned off
  (asyncio_common.py, shared with the Starlette peer).
- Rust counterpart: tokio-actix (one single-threaded runtime per worker).
"""

from aiohttp import web

import asyncio_common
import contract

config = contract.Config("aiohttp")


def reply(status, body, headers=None):
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


async def backends(app):
    app["pool"], app["upstream"] = await asyncio_common.open_backends(config)
    yield
    await asyncio_common.close_backends(app["pool"], app["upstream"])


async def json_endpoint(request):
    contract.no_parameters(request.query_string, "/json")
    return reply(200, contract.HELLO)


async def health(request):
    contract.no_parameters(request.query_string, "/health")
    return reply(200, contract.HEALTH_OK)


async def test(request):
    app = request.app
    status, body = await asyncio_common.answer_test(
        config, request.query_string, app["pool"], app["upstream"]
    )
    return reply(status, body)


@web.middleware
async def contract_errors(request, handler):
    try:
        return await handler(request)
    except contract.BadRequest as e:
        return reply(400, contract.error_body(str(e)))
    except web.HTTPMethodNotAllowed:
        return reply(405, contract.error_body(f"method {request.method} not allowed"), {"Allow": "GET"})
    except web.HTTPNotFound:
        return reply(404, contract.error_body(f"no route for {request.path}"))


async def make_app():
    app = web.Application(middlewares=[contract_errors])
    app.router.add_get("/json", json_endpoint, allow_head=False)
    app.router.add_get("/health", health, allow_head=False)
    app.router.add_get("/test", test, allow_head=False)
    app.cleanup_ctx.append(backends)
    return app

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
  the throughput. A read-only app needs no reset, so it is turned off here.
- Rust counterpart: tokio-actix (one single-threaded runtime per worker).
"""

import asyncio

import aiohttp
import asyncpg
from aiohttp import web

import contract

config = contract.Config("aiohttp")


def reply(status, body, headers=None):
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


async def no_reset(connection):
    """Nothing to undo: the app only reads, in autocommit."""


async def open_backends(app):
    app["pool"] = await asyncpg.create_pool(
        config.database_url,
        min_size=0,
        max_size=config.pool_size,
        reset=no_reset,
        server_settings={"application_name": config.app},
    )
    app["upstream"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    yield
    await app["upstream"].close()
    await app["pool"].close()


async def json_endpoint(request):
    contract.no_parameters(request.query_string, "/json")
    return reply(200, contract.HELLO)


async def health(request):
    contract.no_parameters(request.query_string, "/health")
    return reply(200, contract.HEALTH_OK)


async def test(request):
    work = contract.Work(config, request.query_string)
    if work.backend == "upstream":
        url = contract.upstream_target(config, work.delay_ms)
        try:
            timeout = aiohttp.ClientTimeout(total=work.delay_ms / 1000 + 3)
            async with request.app["upstream"].get(url, timeout=timeout) as page:
                body = await page.read()
        except asyncio.TimeoutError:
            return reply(504, contract.error_body("upstream did not answer in time"))
        except aiohttp.ClientError as e:
            return reply(502, contract.error_body(f"upstream unreachable: {type(e).__name__}"))
        return reply(200, contract.upstream_body(page.status, len(body)))
    statement, args = work.statement()
    pool = request.app["pool"]
    try:
        async with pool.acquire(timeout=config.pool_timeout_s) as connection:
            row = await connection.fetchrow(statement, *args)
    except asyncio.TimeoutError:
        return reply(503, contract.error_body("no free DB connection within the pool timeout"))
    except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as e:
        return reply(503, contract.error_body(f"database unavailable: {type(e).__name__}"))
    if row is None:
        return reply(404, contract.error_body(f"no row with id {work.id}"))
    return reply(200, contract.row_body(row["a"], row["b"]))


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
    app.cleanup_ctx.append(open_backends)
    return app

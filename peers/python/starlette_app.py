"""starlette-uvicorn: Starlette on uvicorn (uvloop, httptools) with asyncpg.

- Threads: `--workers` uvicorn processes (6 in Grinberg's runs), each one OS thread running
  one asyncio event loop (uvloop), one task per request.
- Where a request waits: its task awaits asyncpg's socket, or the upstream's (aiohttp's
  client, as in the aiohttp peer, so that the two differ only in the server); the loop runs
  other tasks meanwhile.
- What bounds it: each process's asyncpg pool (`POOL_SIZE`, the process's share of the
  sessions), with the same timeout and the same reset turned off as the aiohttp peer. The
  harness states its model as pool:(processes x pool). The upstream has no such bound.
- Rust counterpart: tokio-axum (a work-stealing runtime has no Python analog: each uvicorn
  process is its own loop).
"""

import asyncio
import contextlib

import aiohttp
import asyncpg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Route

import contract

config = contract.Config("starlette-uvicorn")
backends = {}


def reply(status, body, headers=None):
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def no_reset(connection):
    """Nothing to undo: the app only reads, in autocommit."""


@contextlib.asynccontextmanager
async def lifespan(app):
    backends["pool"] = await asyncpg.create_pool(
        config.database_url,
        min_size=0,
        max_size=config.pool_size,
        reset=no_reset,
        server_settings={"application_name": config.app},
    )
    backends["upstream"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    yield
    await backends["upstream"].close()
    await backends["pool"].close()


async def json_endpoint(request):
    contract.no_parameters(request.url.query, "/json")
    return reply(200, contract.HELLO)


async def health(request):
    contract.no_parameters(request.url.query, "/health")
    return reply(200, contract.HEALTH_OK)


async def test(request):
    work = contract.Work(config, request.url.query)
    if work.backend == "upstream":
        url = contract.upstream_target(config, work.delay_ms)
        try:
            timeout = aiohttp.ClientTimeout(total=work.delay_ms / 1000 + 3)
            async with backends["upstream"].get(url, timeout=timeout) as page:
                body = await page.read()
        except asyncio.TimeoutError:
            return reply(504, contract.error_body("upstream did not answer in time"))
        except aiohttp.ClientError as e:
            return reply(502, contract.error_body(f"upstream unreachable: {type(e).__name__}"))
        return reply(200, contract.upstream_body(page.status, len(body)))
    statement, args = work.statement()
    try:
        async with backends["pool"].acquire(timeout=config.pool_timeout_s) as connection:
            row = await connection.fetchrow(statement, *args)
    except asyncio.TimeoutError:
        return reply(503, contract.error_body("no free DB connection within the pool timeout"))
    except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as e:
        return reply(503, contract.error_body(f"database unavailable: {type(e).__name__}"))
    if row is None:
        return reply(404, contract.error_body(f"no row with id {work.id}"))
    return reply(200, contract.row_body(row["a"], row["b"]))


async def bad_request(request, e):
    return reply(400, contract.error_body(str(e)))


async def http_error(request, e):
    if e.status_code == 405:
        return reply(405, contract.error_body(f"method {request.method} not allowed"), {"Allow": "GET"})
    if e.status_code == 404:
        return reply(404, contract.error_body(f"no route for {request.url.path}"))
    return reply(e.status_code, contract.error_body(str(e.detail)))


app = Starlette(
    routes=[
        Route("/json", json_endpoint, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/test", test, methods=["GET"]),
    ],
    exception_handlers={contract.BadRequest: bad_request, HTTPException: http_error},
    lifespan=lifespan,
)

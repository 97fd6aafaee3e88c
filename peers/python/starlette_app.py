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

import contextlib

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Route

import asyncio_common
import contract

config = contract.Config("starlette-uvicorn")
backends = {}


def reply(status, body, headers=None):
    return Response(body, status_code=status, media_type="application/json", headers=headers)


@contextlib.asynccontextmanager
async def lifespan(app):
    backends["pool"], backends["upstream"] = await asyncio_common.open_backends(config)
    yield
    await asyncio_common.close_backends(backends["pool"], backends["upstream"])


async def json_endpoint(request):
    contract.no_parameters(request.url.query, "/json")
    return reply(200, contract.HELLO)


async def health(request):
    contract.no_parameters(request.url.query, "/health")
    return reply(200, contract.HEALTH_OK)


async def test(request):
    status, body = await asyncio_common.answer_test(
        config, request.url.query, backends["pool"], backends["upstream"]
    )
    return reply(status, body)


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

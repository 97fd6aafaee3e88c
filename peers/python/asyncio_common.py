"""What the two asyncio peers share: their backends (an asyncpg pool and an aiohttp client
session per process) and the /test answer. Each peer's own file is the framework's side: how
its server hands a request to a task on the process's event loop."""

import asyncio

import aiohttp
import asyncpg

import contract


async def no_reset(connection):
    """Nothing to undo: the app only reads, in autocommit. asyncpg's default reset runs
    `RESET ALL` and three more statements on every release: four statements per request
    instead of the contract's one."""


async def open_backends(config):
    """This process's pool (its share of the sessions, opened as needed) and upstream client
    (no limit of its own)."""
    pool = await asyncpg.create_pool(
        config.database_url,
        min_size=0,
        max_size=config.pool_size,
        reset=no_reset,
        server_settings={"application_name": config.app},
    )
    upstream = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    return pool, upstream


async def close_backends(pool, upstream):
    await upstream.close()
    await pool.close()


async def answer_test(config, query, pool, upstream):
    """/test as (status, body): the task awaits the pool, PostgreSQL or the upstream, and the
    loop runs other tasks meanwhile."""
    work = contract.Work(config, query)
    if work.backend == "upstream":
        url = contract.upstream_target(config, work.delay_ms)
        timeout = aiohttp.ClientTimeout(total=work.delay_ms / 1000 + 3)

        async def fetch():
            async with upstream.get(url, timeout=timeout) as page:
                return page.status, len(await page.read())

        try:
            # fanout=K: K fetches gathered in this task, their waits overlapped.
            pages = await asyncio.gather(*(fetch() for _ in range(work.fanout)))
        except asyncio.TimeoutError:
            return 504, contract.error_body("upstream did not answer in time")
        except aiohttp.ClientError as e:
            return 502, contract.error_body(f"upstream unreachable: {type(e).__name__}")
        # The work runs here, on the event loop: every other task of this process waits.
        return 200, contract.with_work(contract.pages_body(pages), work.work)
    statement, args = work.statement()
    try:
        async with pool.acquire(timeout=config.pool_timeout_s) as connection:
            row = await connection.fetchrow(statement, *args)
    except asyncio.TimeoutError:
        return 503, contract.error_body("no free DB connection within the pool timeout")
    except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as e:
        return 503, contract.error_body(f"database unavailable: {type(e).__name__}")
    if row is None:
        return 404, contract.error_body(f"no row with id {work.id}")
    return 200, contract.with_work(contract.row_body(row["a"], row["b"]), work.work)

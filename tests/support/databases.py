"""Real database servers on 127.0.0.1 (PostgreSQL, Redis): skip, loudly, when one is missing."""

from __future__ import annotations

import contextlib
import os
import secrets

import asyncpg
import pytest
import redis

ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.asynccontextmanager
async def fresh_database(prefix: str = "cunhui_test"):
    """The URL of a new, empty PostgreSQL database, dropped afterwards.

    Skips, loudly, when no server answers.
    """
    try:
        admin = await asyncpg.connect(ADMIN_DSN, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL NOT TESTED: no server at {ADMIN_DSN} ({exc})"
        print("\n" + "!" * 20 + " " + message)
        pytest.skip(message)
    name = f"{prefix}_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield f"postgresql+asyncpg://{base.split('://', 1)[1]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        message = f"REDIS NOT TESTED: no server at {REDIS_URL} ({exc})"
        print("\n" + "!" * 20 + " " + message)
        pytest.skip(message)

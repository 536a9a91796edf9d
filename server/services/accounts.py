"""Committee accounts: creation and password login (argon2, hashed off the event loop)."""

from __future__ import annotations

import asyncio
import logging

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import BadRequest, Busy, Conflict, Unauthorized
from ..store import User
from .passwords import DUMMY_HASH, HASHER, PasswordPool
from .villages import village_for_new_account

logger = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 6
MAX_USERNAME_LENGTH = 64
#: longer passwords are refused before any hashing (argon2 would take them, slowly)
MAX_PASSWORD_LENGTH = 1024


def check_username(username: str) -> str:
    username = (username or "").strip()
    if not username or len(username) > MAX_USERNAME_LENGTH:
        raise BadRequest(
            "the username must be 1 to {max_username_length} characters",
            params={"max_username_length": MAX_USERNAME_LENGTH},
        )
    if any(c.isspace() for c in username):
        raise BadRequest("the username must not contain spaces")
    return username


async def create_user(
    db: AsyncSession,
    username: str,
    password: str,
    village: str | None = None,
    pool: PasswordPool | None = None,
) -> User:
    """A committee account of ``village`` (default: the server's only village).

    The hash is computed in ``pool``, or in a thread of its own without one (the CLI).
    """
    username = check_username(username)
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise BadRequest(
            "the password must have at least {min_password_length} characters",
            params={"min_password_length": MIN_PASSWORD_LENGTH},
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadRequest(
            "the password must have at most {max_password_length} characters",
            params={"max_password_length": MAX_PASSWORD_LENGTH},
        )
    existing = await db.exec(select(User).where(User.username == username))
    if existing.first() is not None:
        raise Conflict("the user {username!r} already exists", params={"username": username})
    home = await village_for_new_account(db, village)
    if pool is not None:
        password_hash = await pool.hash(password)
    else:
        password_hash = await asyncio.to_thread(HASHER.hash, password)
    user = User(username=username, password_hash=password_hash, village_id=home.id)
    db.add(user)
    await db.commit()
    await db.refresh(user)
    return user


async def authenticate(db: AsyncSession, pool: PasswordPool, username: str, password: str) -> User:
    """Return the user whose password matches, or raise Unauthorized (same message either way).

    The hash is checked in ``pool`` (:class:`~server.errors.Busy` when it is full), with no
    database transaction open meanwhile, so waiting logins hold no connection.
    """
    if len(password or "") > MAX_PASSWORD_LENGTH:
        raise Unauthorized("wrong username or password")
    result = await db.exec(select(User).where(User.username == (username or "").strip()))
    user = result.first()
    await db.commit()  # end the read: the hashing below may wait seconds for a thread
    stored = user.password_hash if user else DUMMY_HASH
    if not await pool.verify(stored, password or "") or user is None:
        raise Unauthorized("wrong username or password")
    if pool.needs_rehash(stored):
        try:
            user.password_hash = await pool.hash(password)
        except Busy:
            return user  # the login stands; the hash is upgraded at a quieter login
        db.add(user)
        await db.commit()
        logger.info("password hash of user %s upgraded", user.id)
    return user


async def get_user(db: AsyncSession, user_id: int) -> User | None:
    return await db.get(User, user_id)

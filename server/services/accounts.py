"""Committee accounts: creation and password login (argon2)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import BadRequest, Conflict, Unauthorized
from ..store import User
from .villages import village_for_new_account

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a login takes as long
# whether or not the account exists.
_DUMMY_HASH = _hasher.hash("not a real password")

MIN_PASSWORD_LENGTH = 6
MAX_USERNAME_LENGTH = 64


def check_username(username: str) -> str:
    username = (username or "").strip()
    if not username or len(username) > MAX_USERNAME_LENGTH:
        raise BadRequest(f"the username must be 1 to {MAX_USERNAME_LENGTH} characters")
    if any(c.isspace() for c in username):
        raise BadRequest("the username must not contain spaces")
    return username


async def create_user(
    db: AsyncSession, username: str, password: str, village: str | None = None
) -> User:
    """A committee account of ``village`` (default: the server's only village)."""
    username = check_username(username)
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise BadRequest(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    existing = await db.exec(select(User).where(User.username == username))
    if existing.first() is not None:
        raise Conflict(f"the user {username!r} already exists")
    home = await village_for_new_account(db, village)
    user = User(username=username, password_hash=_hasher.hash(password), village_id=home.id)
    db.add(user)
    await db.commit()
    await db.refresh(user)
    return user


async def authenticate(db: AsyncSession, username: str, password: str) -> User:
    """Return the user whose password matches, or raise Unauthorized (same message either way)."""
    result = await db.exec(select(User).where(User.username == (username or "").strip()))
    user = result.first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        user = None
    if user is None:
        raise Unauthorized("wrong username or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        db.add(user)
        await db.commit()
    return user


async def get_user(db: AsyncSession, user_id: int) -> User | None:
    return await db.get(User, user_id)

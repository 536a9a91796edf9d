"""Who a token stands for, checked against the database on every use."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import Unauthorized
from .accounts import get_user
from .tokens import Principal, TokenService

USER = "u"


def committee_token(tokens: TokenService, user_id: int) -> str:
    return tokens.issue(USER, user_id)


async def resolve(db: AsyncSession, tokens: TokenService, token: str) -> Principal:
    """Return the principal of a valid token; a deleted account's token is refused."""
    payload = tokens.verify(token)
    if payload["k"] == USER:
        try:
            user = await get_user(db, int(payload["s"]))
        except ValueError:
            user = None
        if user is None:
            raise Unauthorized("the account of this token no longer exists")
        return Principal(id=f"u{user.id}", name=user.username, role="committee")
    raise Unauthorized("the token is not valid")

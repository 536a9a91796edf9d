"""Signed, expiring bearer tokens, and the principal they stand for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..errors import Forbidden, Unauthorized

Role = Literal["committee", "member", "guest"]


def member_principal_id(member_id: int) -> str:
    """A member's participant id: member 12 is ``m12`` (in events, hands, the floor)."""
    return f"m{member_id}"


def user_principal_id(user_id: int) -> str:
    """A committee account's participant id: user 3 is ``u3``."""
    return f"u{user_id}"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a committee user, a member or a guest."""

    id: str
    name: str
    role: Role
    #: the village of a committee user or member
    village_id: int | None = None
    #: the one meeting a guest was admitted to
    meeting_id: int | None = None

    @property
    def is_committee(self) -> bool:
        return self.role == "committee"

    @property
    def home_village_id(self) -> int:
        """``village_id``, known to be set (every account has had one since migration 0002)."""
        if self.village_id is None:
            raise Forbidden("this account belongs to no village")
        return self.village_id

    @property
    def member_id(self) -> int:
        """The member's row id (``m12`` is 12); only for a member."""
        if self.role != "member":
            raise ValueError(f"{self.id} is not a member")
        return int(self.id[1:])

    @property
    def user_id(self) -> int:
        """The committee account's row id (``u3`` is 3); only for the committee."""
        if self.role != "committee":
            raise ValueError(f"{self.id} is not a committee account")
        return int(self.id[1:])

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "role": self.role}


class TokenService:
    """Issues and checks tokens; the payload names the account, never a password."""

    def __init__(
        self, secret_key: str, max_age: int, lifetimes: dict[str, int] | None = None
    ) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="cunhui.token.v1")
        self.max_age = max_age
        #: kinds of token that live longer (or shorter) than ``max_age``, in seconds
        self.lifetimes = dict(lifetimes or {})

    def lifetime(self, kind: str) -> int:
        return self.lifetimes.get(kind, self.max_age)

    def issue(self, kind: str, subject: str | int, **claims: str | int) -> str:
        return self._serializer.dumps({"k": kind, "s": str(subject), **claims})

    def verify(self, token: str, *, expires: bool = True) -> dict:
        """Return the payload (``k`` kind, ``s`` subject, claims), or raise Unauthorized.

        ``expires=False`` is for invites, which last until they are re-issued.
        """
        longest = max([self.max_age, *self.lifetimes.values()])
        if not isinstance(token, str) or not token.isascii():
            # ours are URL-safe base64; a header's stray bytes would not even encode
            raise Unauthorized("the token is not valid")
        try:
            payload, issued = self._serializer.loads(
                token, max_age=longest if expires else None, return_timestamp=True
            )
        except SignatureExpired as exc:
            raise Unauthorized("the token has expired; log in again") from exc
        except BadSignature as exc:
            raise Unauthorized("the token is not valid") from exc
        if not isinstance(payload, dict) or "k" not in payload or "s" not in payload:
            raise Unauthorized("the token is not valid")
        if expires:
            age = (datetime.now(UTC) - issued).total_seconds()
            if age > self.lifetime(str(payload["k"])):
                raise Unauthorized("the token has expired; log in again")
        return payload

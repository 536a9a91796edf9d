"""The member roll: villagers who may join their village's meetings and vote."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import BadRequest, Conflict, NotFound
from ..store import Member, utcnow
from .tokens import TokenService

MAX_NAME = 64
PIN_DIGITS = 6
INVITE = "i"


@dataclass
class NewInvite:
    member: Member
    invite: str

    def as_dict(self, base_url: str) -> dict:
        return {
            "id": self.member.id,
            "name": self.member.name,
            "phone": self.member.phone,
            "household": self.member.household,
            "invite": self.invite,
            "invite_url": f"{base_url}/i/{self.invite}",
            "pin": self.member.pin,
        }


def member_dict(member: Member) -> dict:
    return {
        "id": member.id,
        "name": member.name,
        "phone": member.phone,
        "household": member.household,
        "birth_year": member.birth_year,
        "representative": member.representative,
    }


def _text(value: object, what: str, limit: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be text")
    value = value.strip()
    if required and not value:
        raise BadRequest(f"{what} is required")
    if len(value) > limit:
        raise BadRequest(f"{what} must be at most {limit} characters")
    return value


def invite_for(tokens: TokenService, member: Member) -> str:
    return tokens.issue(INVITE, member.id, v=member.invite_version)


async def free_pin(db: AsyncSession, village_id: int) -> str:
    for _ in range(50):
        pin = "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))
        taken = await db.exec(
            select(Member.id).where(Member.village_id == village_id, Member.pin == pin)
        )
        if taken.first() is None:
            return pin
    raise Conflict("could not allocate a PIN; try again")


async def add_member(
    db: AsyncSession, tokens: TokenService, village_id: int, body: dict
) -> NewInvite:
    member = Member(
        village_id=village_id,
        name=_text(body.get("name"), "name", MAX_NAME, required=True),
        phone=_text(body.get("phone"), "phone", 32),
        household=_text(body.get("household"), "household", 64),
        pin=await free_pin(db, village_id),
    )
    db.add(member)
    await db.commit()
    return NewInvite(member, invite_for(tokens, member))


async def village_member(db: AsyncSession, village_id: int, member_id: object) -> Member:
    """A current member of this village; anything else (other village, removed) is NotFound."""
    try:
        key = int(member_id)
    except (TypeError, ValueError):
        raise NotFound(f"no member {member_id!r}") from None
    member = await db.get(Member, key) if 0 < key < 2**63 else None
    if member is None or member.village_id != village_id or member.removed_at is not None:
        raise NotFound(f"no member {member_id!r}")
    return member


async def list_members(db: AsyncSession, village_id: int) -> list[Member]:
    result = await db.exec(
        select(Member)
        .where(Member.village_id == village_id, Member.removed_at == None)  # noqa: E711
        .order_by(Member.id)
    )
    return list(result.all())


async def reissue_invite(db: AsyncSession, tokens: TokenService, member: Member) -> NewInvite:
    """A lost phone: the old invite, PIN and sign-ins stop working; new ones are returned."""
    member.invite_version += 1
    member.pin = await free_pin(db, member.village_id)
    db.add(member)
    await db.commit()
    return NewInvite(member, invite_for(tokens, member))


async def remove_member(db: AsyncSession, member: Member) -> None:
    """Take a member off the roll; their invite and sign-ins stop working at once."""
    member.removed_at = utcnow()
    member.invite_version += 1
    db.add(member)
    await db.commit()

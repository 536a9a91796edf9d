"""The member roll: villagers who may join their village's meetings and vote."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import BadRequest, Conflict, NotFound, PhoneTaken
from ..store import Member, pk, utcnow
from .payload import parse_id
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


FIELDS = ("name", "phone", "household", "birth_year", "representative")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a member's details: a code pages translate, and English text.

    ``message`` is an English message id with ``{name}`` placeholders filled from
    ``params`` (``text``), as error messages are (server/errors.py).
    """

    code: str
    message: str
    value: str = ""
    params: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def text(self) -> str:
        return self.message.format(**self.params) if self.params else self.message

    def as_dict(self) -> dict:
        return {"code": self.code, "value": self.value}


def field_problems(name: str, phone: str, household: str, birth_year: int | None) -> list[Problem]:
    """What is wrong with a member's details, in words a clerk can act on (empty: fine)."""
    problems = []
    if not name:
        problems.append(Problem("no_name", "no name"))
    elif len(name) > MAX_NAME:
        problems.append(
            Problem(
                "name_too_long",
                "the name is longer than {limit} characters",
                params={"limit": MAX_NAME},
            )
        )
    digits = phone.replace("-", "").replace(" ", "").lstrip("+")
    if len(phone) > 32 or (phone and not digits.isdigit()):
        problems.append(
            Problem(
                "bad_phone",
                "the phone {phone!r} is not a phone number",
                phone,
                params={"phone": phone},
            )
        )
    if len(household) > 64:
        problems.append(Problem("household_too_long", "the household is longer than 64 characters"))
    if birth_year is not None and not 1900 <= birth_year <= date.today().year:
        problems.append(
            Problem(
                "bad_birth_year",
                "the year of birth {year} is not a year",
                str(birth_year),
                params={"year": birth_year},
            )
        )
    return problems


def parse_fields(body: dict, *, partial: bool) -> dict:
    """A JSON body's member fields (all for an add, those sent for an edit), checked."""
    values: dict = {}
    for name in ("name", "phone", "household"):
        if name in body or not partial:
            raw = body.get(name)
            if raw is not None and not isinstance(raw, str):
                raise BadRequest("{name} must be text", params={"name": name})
            values[name] = (raw or "").strip()
    if "birth_year" in body or not partial:
        year = body.get("birth_year")
        if year == "":
            year = None
        if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
            raise BadRequest("birth_year must be a whole number or null")
        values["birth_year"] = year
    if "representative" in body or not partial:
        flag = body.get("representative", False)
        if not isinstance(flag, bool):
            raise BadRequest("representative must be true or false")
        values["representative"] = flag
    problems = field_problems(
        values.get("name", "-"),
        values.get("phone", ""),
        values.get("household", ""),
        values.get("birth_year"),
    )
    if problems:
        first = problems[0]  # one at a time: the page shows it beside the form
        raise BadRequest(first.message, params=first.params)
    return values


async def check_phone_free(
    db: AsyncSession, village_id: int, phone: str, member_id: int | None = None
) -> None:
    """Two members of a village never share a phone number (it is how a clerk finds them)."""
    if not phone:
        return
    query = select(Member.id).where(
        Member.village_id == village_id,
        Member.phone == phone,
        Member.removed_at == None,  # noqa: E711
    )
    if member_id is not None:
        query = query.where(Member.id != member_id)
    if (await db.exec(query)).first() is not None:
        raise PhoneTaken("the phone {phone} is already on the roll", params={"phone": phone})


def invite_for(tokens: TokenService, member: Member) -> str:
    return tokens.issue(INVITE, pk(member), v=member.invite_version)


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
    fields = parse_fields(body, partial=False)
    await check_phone_free(db, village_id, fields["phone"])
    member = Member(village_id=village_id, pin=await free_pin(db, village_id), **fields)
    db.add(member)
    await db.commit()
    return NewInvite(member, invite_for(tokens, member))


async def edit_member(db: AsyncSession, member: Member, body: dict) -> Member:
    """Change a member's details; their invite, PIN and sign-ins stay valid."""
    fields = parse_fields(body, partial=True)
    if "phone" in fields:
        await check_phone_free(db, member.village_id, fields["phone"], member.id)
    for name, value in fields.items():
        setattr(member, name, value)
    db.add(member)
    await db.commit()
    return member


async def village_member(db: AsyncSession, village_id: int, member_id: object) -> Member:
    """A current member of this village; anything else (other village, removed) is NotFound."""
    key = parse_id(member_id)  # an id no INTEGER column holds is no member (not a crash)
    member = await db.get(Member, key) if key is not None else None
    if member is None or member.village_id != village_id or member.removed_at is not None:
        raise NotFound("no member {member_id!r}", params={"member_id": member_id})
    return member


async def list_members(db: AsyncSession, village_id: int) -> list[Member]:
    result = await db.exec(
        select(Member)
        .where(Member.village_id == village_id, Member.removed_at == None)  # noqa: E711
        .order_by(col(Member.id))
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

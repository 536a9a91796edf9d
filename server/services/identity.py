"""Who a token stands for, checked against the database on every use."""

from __future__ import annotations

import secrets
import unicodedata

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import BadRequest, Forbidden, Unauthorized
from ..store import Meeting, Member, pk
from .accounts import get_user
from .members import INVITE
from .tokens import Principal, TokenService, member_principal_id, user_principal_id

USER, MEMBER, GUEST = "u", "m", "g"
#: a browser an account has logged in from (the "known device" cookie's token kind)
DEVICE = "d"
MAX_GUEST_NAME = 64
#: a member stays signed in on their phone for half a year: the sign-in is revoked
#: at once by a new invite or removal, and a migrant worker may open it twice a year
MEMBER_SESSION_SECONDS = 180 * 24 * 3600
#: a browser stays a known device of its account for a year after its last login
DEVICE_SECONDS = 365 * 24 * 3600
#: longest meeting code or PIN worth looking up (codes have 9 digits, PINs 6)
MAX_CODE_LENGTH = 32
#: characters people put between digits: spaces, dashes, dots (any width)
_SEPARATORS = {"Zs", "Pd", "Cc", "Cf"}


def normalize_digits(text: str) -> str:
    """A meeting code or PIN as typed, as plain digits: "7131 81963", "713-181-963" and
    full-width "７１３１８１９６３" are all "713181963".

    Spaces, dashes, dots and invisible characters go; any decimal digit becomes its ASCII
    digit; other characters stay (so the result does not match any code). Every limit
    and lookup uses this form, so spacing a code differently cannot dodge a lockout.
    """
    out = []
    for char in text[: MAX_CODE_LENGTH * 4]:
        if unicodedata.category(char) in _SEPARATORS or char in "._·・。":
            continue
        digit = unicodedata.decimal(char, None)
        out.append(str(digit) if digit is not None else char)
    return "".join(out)[:MAX_CODE_LENGTH]


def committee_token(tokens: TokenService, user_id: int) -> str:
    return tokens.issue(USER, user_id)


def member_token(tokens: TokenService, member: Member) -> str:
    return tokens.issue(MEMBER, pk(member), v=member.invite_version)


def device_token(tokens: TokenService, user_id: int, username: str) -> str:
    """The known-device cookie a successful login leaves in the browser (signed)."""
    return tokens.issue(DEVICE, user_id, n=username)


def is_known_device(tokens: TokenService, cookie: str | None, username: str) -> bool:
    """Whether ``cookie`` is a device token from an earlier login to ``username``.

    Synchronous (only a signature check), so a login can decide its limits before its
    first await.
    """
    if not cookie:
        return False
    try:
        payload = tokens.verify(cookie)
    except Unauthorized:
        return False
    return payload.get("k") == DEVICE and payload.get("n") == username


async def resolve(db: AsyncSession, tokens: TokenService, token: str) -> Principal:
    """Return the principal of a valid token; a removed account's token is refused."""
    payload = tokens.verify(token)
    kind = payload["k"]
    if kind == USER:
        user = await get_user(db, _int(payload["s"]))
        if user is None:
            raise Unauthorized("the account of this token no longer exists")
        return Principal(
            user_principal_id(pk(user)), user.username, "committee", village_id=user.village_id
        )
    if kind == MEMBER:
        member = await _current_member(db, payload)
        return Principal(
            member_principal_id(pk(member)), member.name, "member", village_id=member.village_id
        )
    if kind == GUEST:
        return Principal(
            id=f"g{payload['s']}",
            name=str(payload.get("n", "")),
            role="guest",
            meeting_id=_int(payload.get("m")),
        )
    raise Unauthorized("the token is not valid")  # e.g. a device token: not a sign-in


async def _current_member(db: AsyncSession, payload: dict) -> Member:
    member = await db.get(Member, _int(payload["s"]))
    if member is None or member.removed_at is not None or member.invite_version != payload.get("v"):
        raise Unauthorized("this invite or sign-in is no longer valid: ask the committee")
    return member


def _int(value: object) -> int:
    if isinstance(value, str | int | float):  # what a JSON payload holds that int() takes
        try:
            return int(value)
        except ValueError:
            pass
    raise Unauthorized("the token is not valid")


async def join_with_invite(db: AsyncSession, tokens: TokenService, invite: str) -> Member:
    """The member behind a personal invite (link or QR code)."""
    payload = tokens.verify(invite, expires=False)
    if payload["k"] != INVITE:
        raise Unauthorized("this is not an invite")
    return await _current_member(db, payload)


async def join_with_pin(db: AsyncSession, meeting: Meeting, pin: str) -> Member:
    """The member of the meeting's village whose PIN this is."""
    if meeting.village_id is None:
        raise Unauthorized("wrong meeting code or PIN")
    result = await db.exec(
        select(Member).where(
            Member.village_id == meeting.village_id,
            Member.pin == pin,
            Member.removed_at == None,  # noqa: E711
        )
    )
    member = result.first()
    if member is None:
        raise Unauthorized("wrong meeting code or PIN")
    return member


def guest_token(tokens: TokenService, meeting: Meeting, name: object) -> tuple[str, Principal]:
    if not meeting.allow_guests:
        raise Forbidden("this meeting does not admit guests: members join with their invite")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("a guest needs a display name")
    name = name.strip()
    if len(name) > MAX_GUEST_NAME:
        raise BadRequest(
            "the name must be at most {max_guest_name} characters",
            params={"max_guest_name": MAX_GUEST_NAME},
        )
    guest_id = secrets.token_hex(6)
    token = tokens.issue(GUEST, guest_id, m=pk(meeting), n=name)
    return token, Principal(id=f"g{guest_id}", name=name, role="guest", meeting_id=meeting.id)

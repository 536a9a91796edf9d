"""Villages: the unit that committees and members belong to."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import BadRequest
from ..store import Village

#: the village an installation with a single village gets without being asked
DEFAULT_VILLAGE = "本村"


async def village_for_new_account(db: AsyncSession, name: str | None) -> Village:
    """The named village (created if new), else the only one there is, else a first one."""
    if name is not None:
        name = name.strip()
        if not name or len(name) > 100:
            raise BadRequest("the village name must be 1 to 100 characters")
        found = (await db.exec(select(Village).where(Village.name == name))).first()
        if found is not None:
            return found
        village = Village(name=name)
    else:
        villages = list((await db.exec(select(Village).limit(2))).all())
        if len(villages) == 1:
            return villages[0]
        if len(villages) > 1:
            raise BadRequest("this server has several villages: name one with --village")
        village = Village(name=DEFAULT_VILLAGE)
    db.add(village)
    await db.flush()
    return village

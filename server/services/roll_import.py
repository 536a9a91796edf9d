"""Importing the member roll from a spreadsheet's CSV export, all or nothing.

Excel in China saves CSV as GBK (GB18030 covers it); newer tools as UTF-8 with or
without a BOM. Headers may be English or Chinese. Any rejected row rejects the
whole file, with a report of every problem, so nothing is half-imported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import BadRequest, ImportRejected
from ..store import Member
from .members import NewInvite, Problem, field_problems, free_pin, invite_for
from .tokens import TokenService

if TYPE_CHECKING:
    from _csv import Reader  # what csv.reader() returns (csv does not export the name)

MAX_ROWS = 5000

HEADERS = {
    "name": ("name", "姓名", "名字"),
    "phone": ("phone", "电话", "手机", "手机号", "联系电话"),
    "household": ("household", "户", "户号", "户主", "所属户"),
    "birth_year": ("birth_year", "year of birth", "出生年份", "出生年"),
    "representative": ("representative", "代表", "村民代表", "是否代表"),
}
YES = {"yes", "y", "true", "1", "是", "√", "代表"}
NO = {"", "no", "n", "false", "0", "否"}


@dataclass
class ParsedRow:
    line: int
    name: str
    phone: str
    household: str
    birth_year: int | None
    representative: bool
    problems: list[Problem] = field(default_factory=list)


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030, else a clear refusal."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:  # no spreadsheet writes one; PostgreSQL cannot store it
            raise BadRequest("the file contains a NUL character: save it from Excel as CSV")
        return text
    raise BadRequest("the file is neither UTF-8 nor GBK text: save it from Excel as CSV")


def _records(reader: Reader) -> Iterator[list[str]]:
    """The reader's rows; a malformed one (e.g. a cell over csv's 128 KB limit) is a 400."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise BadRequest(
                "line {line_num} of the file cannot be read as CSV: {error}",
                params={"line_num": reader.line_num, "error": exc},
            ) from None


def parse(text: str) -> list[ParsedRow]:
    reader = csv.reader(io.StringIO(text))
    records = _records(reader)
    try:
        header = next(records)
    except StopIteration:
        raise BadRequest("the file is empty") from None
    columns = _columns(header)
    rows: list[ParsedRow] = []
    this_year = date.today().year
    for number, cells in enumerate(records, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(rows) >= MAX_ROWS:
            raise BadRequest("at most {max_rows} members per file", params={"max_rows": MAX_ROWS})

        def cell(name: str, cells: list[str] = cells) -> str:
            index = columns.get(name)
            return cells[index].strip() if index is not None and index < len(cells) else ""

        row = ParsedRow(number, cell("name"), cell("phone"), cell("household"), None, False)
        year = cell("birth_year")
        if year:
            # four ASCII digits before int(): a 5,000-digit "year" is not parsed at all
            if (
                len(year) == 4
                and year.isascii()
                and year.isdigit()
                and 1900 <= int(year) <= this_year
            ):
                row.birth_year = int(year)
            else:
                year = year[:20]
                row.problems.append(
                    Problem(
                        "bad_birth_year",
                        "the year of birth {year!r} is not a year",
                        year,
                        params={"year": year},
                    )
                )
        row.problems[:0] = field_problems(row.name, row.phone, row.household, row.birth_year)
        flag = cell("representative").lower()
        if flag in YES:
            row.representative = True
        elif flag not in NO:
            flag = flag[:20]
            row.problems.append(
                Problem(
                    "bad_representative",
                    "representative must be yes or no, not {flag!r}",
                    flag,
                    params={"flag": flag},
                )
            )
        rows.append(row)
    if not rows:
        raise BadRequest("the file has a header but no members")
    return rows


def _columns(header: list[str]) -> dict[str, int]:
    columns = {}
    for index, title in enumerate(header):
        title = title.strip().lower()
        for name, spellings in HEADERS.items():
            if title in spellings:
                columns[name] = index
    if "name" not in columns:
        raise BadRequest(
            "the first row must name the columns, with at least name (姓名); also understood: "
            "phone (电话), household (户), birth_year (出生年份), representative (代表)"
        )
    return columns


async def import_roll(
    db: AsyncSession, tokens: TokenService, village_id: int, data: bytes
) -> list[NewInvite]:
    """Add every row as a member, or none: raises ImportRejected with the report."""
    rows = parse(decode(data))
    existing = await db.exec(
        select(Member.phone).where(
            col(Member.village_id) == village_id,
            col(Member.removed_at).is_(None),
            col(Member.phone) != "",
        )
    )
    known = set(existing.all())
    seen: dict[str, int] = {}
    for row in rows:
        if row.phone:
            if row.phone in known:
                row.problems.append(
                    Problem(
                        "phone_on_roll",
                        "the phone {phone} is already on the roll",
                        row.phone,
                        params={"phone": row.phone},
                    )
                )
            elif row.phone in seen:
                row.problems.append(
                    Problem(
                        "phone_repeated",
                        "the phone {phone} is also on line {line}",
                        str(seen[row.phone]),
                        params={"phone": row.phone, "line": seen[row.phone]},
                    )
                )
            else:
                seen[row.phone] = row.line
    report = [
        {
            "line": r.line,
            "name": r.name,
            "problems": [p.text for p in r.problems],
            "codes": [p.as_dict() for p in r.problems],
        }
        for r in rows
        if r.problems
    ]
    if report:
        raise ImportRejected(
            "{problems} of {rows} rows have problems; nothing was imported",
            report,
            params={"problems": len(report), "rows": len(rows)},
        )
    added = []
    for row in rows:
        member = Member(
            village_id=village_id,
            name=row.name,
            phone=row.phone,
            household=row.household,
            birth_year=row.birth_year,
            representative=row.representative,
            pin=await free_pin(db, village_id),
        )
        db.add(member)
        await db.flush()  # the next PIN must see this one
        added.append(member)
    await db.commit()
    return [NewInvite(m, invite_for(tokens, m)) for m in added]

"""Issue 12, item 8: no open redirect through ``?next=`` (language switch, login page).

Browsers drop tabs and newlines from a URL and read ``\\`` as ``/``: before the fix,
``/lang/en?next=/%09/evil.example`` answered ``Location: //evil.example``'s equivalent.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import pytest
from yarl import URL

from server.i18n import LOCALE_COOKIE

#: ``next`` values as they appear, already %-encoded, in an attacker's link
EVIL = [
    "/%09/evil.example",
    "/%0a/evil.example",
    "/%0d/evil.example",
    "/%0d%0a/evil.example",
    "%2F%09%2Fevil.example",
    "//evil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%5C/evil.example",
    "%5C%5Cevil.example",
    "/\\evil.example",
    "https://evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "/%E3%80%80/evil.example",  # an ideographic space
    "/%C2%85/evil.example",  # NEL, a C1 control
    "evil.example",
    "",
]


def is_local(location: str) -> bool:
    """What a browser would do with it: stay on this site."""
    cleaned = re.sub(r"[\t\n\r]", "", location)  # browsers drop these
    cleaned = cleaned.replace("\\", "/")  # and read backslashes as slashes
    parts = urlsplit(cleaned)
    return (
        cleaned.startswith("/")
        and not cleaned.startswith("//")
        and not parts.scheme
        and not parts.netloc
        and not any(ord(c) < 0x21 or ord(c) > 0x7E for c in location)
    )


@pytest.mark.parametrize("evil", EVIL)
async def test_language_switch_never_redirects_off_site(client, evil):
    response = await client.get(URL(f"/lang/en?next={evil}", encoded=True), allow_redirects=False)
    assert response.status == 302
    location = response.headers["Location"]
    assert is_local(location), location
    assert location == "/"
    assert response.cookies[LOCALE_COOKIE].value == "en"  # the switch itself still works


@pytest.mark.parametrize("evil", EVIL)
async def test_login_page_never_hands_the_script_an_off_site_next(client, evil):
    page = await (await client.get(URL(f"/login?next={evil}", encoded=True))).text()
    found = re.search(r'data-next="([^"]*)"', page)
    assert found, page
    assert html.unescape(found.group(1)) == "/"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/meetings/past%3Fq%3D%E4%BC%9A", "/meetings/past?q=%E4%BC%9A"),
        ("/m/713181963", "/m/713181963"),
        ("/", "/"),
    ],
)
async def test_local_paths_are_still_followed(client, given, expected):
    response = await client.get(
        URL(f"/lang/zh_CN?next={given}", encoded=True), allow_redirects=False
    )
    assert response.status == 302 and response.headers["Location"] == expected
    page = await (await client.get(URL(f"/login?next={given}", encoded=True))).text()
    assert f'data-next="{expected}"' in page


async def test_other_redirects_go_to_fixed_local_paths(client):
    """The invite link redirects too, but only to paths of its own making."""
    response = await client.get("/i/not-a-real-invite", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/?invite=invalid"
    page = await client.get("/members", allow_redirects=False)
    assert page.status == 302 and page.headers["Location"] == "/login?next=/members"

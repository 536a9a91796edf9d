"""Every UI string has a Chinese translation: the UI is Chinese-first."""

from __future__ import annotations

from babel.messages.extract import extract_from_dir

from server.i18n import Catalogs
from server.settings import REPO_ROOT

WEB = REPO_ROOT / "web"


def ui_strings() -> set[str]:
    found = extract_from_dir(
        str(WEB / "templates"),
        method_map=[("**.html", "jinja2")],
        options_map={"**.html": {"extensions": "jinja2.ext.i18n"}},
    )
    strings = set()
    for _filename, _lineno, message, _comments, _context in found:
        strings.add(message if isinstance(message, str) else message[0])
    return strings


def test_templates_use_translated_strings():
    assert len(ui_strings()) >= 20  # the extractor really read the templates


def test_every_ui_string_has_a_zh_cn_translation():
    catalogs = Catalogs(WEB / "translations")
    missing = sorted(s for s in ui_strings() if not catalogs.has("zh_CN", s))
    assert not missing, f"no zh_CN translation for: {missing}"


def test_locale_choice():
    from server.i18n import pick_locale

    assert pick_locale(None, None) == "zh_CN"
    assert pick_locale(None, "en-US,en;q=0.9") == "en"
    assert pick_locale(None, "zh-TW,zh;q=0.9") == "zh_CN"
    assert pick_locale("en", "zh-CN") == "en"  # the user's switch wins
    assert pick_locale("fr", "fr-FR") == "zh_CN"

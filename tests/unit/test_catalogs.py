"""The UI is Chinese first: every msgid in the sources has a zh_CN translation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]


def _catalog(locale: str):
    with (ROOT / "server" / "locale" / locale / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=locale)


def test_every_source_msgid_has_a_chinese_translation(tmp_path):
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run(
        [
            str(pybabel),
            "-q",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "N_",
            "-k",
            "_",
            "-o",
            str(pot),
            "--no-location",
            ".",
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    with pot.open("rb") as f:
        extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    zh = {m.id if isinstance(m.id, str) else m.id[0]: m.string for m in _catalog("zh_CN") if m.id}
    missing = sorted(i for i in extracted if not zh.get(i))
    assert not missing, f"untranslated msgids (run `make messages` and translate): {missing[:20]}"


def test_translations_keep_their_placeholders():
    import re

    for m in _catalog("zh_CN"):
        if not m.id or not isinstance(m.id, str) or not m.string:
            continue
        assert set(re.findall(r"%\(\w+\)s", m.id)) == set(re.findall(r"%\(\w+\)s", m.string)), m.id


def test_labels_of_every_code_are_translated():
    from server.domain.vocab import Category, Channel, Kind, Role, Status, Urgency
    from server.i18n import use_locale
    from server.labels import label

    with use_locale("zh_CN"):
        for enum in (Role, Kind, Urgency, Channel, Status, Category):
            for member in enum:
                shown = label(member.value)
                assert shown and not shown.isascii(), (enum.__name__, member.value, shown)

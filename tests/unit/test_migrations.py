"""The web processes read the migration chain without Alembic: they must agree with it."""

from __future__ import annotations

import subprocess
import sys

from server.persistence.migrate import alembic_head_revision, head_revision


def test_the_light_head_is_alembic_s_head() -> None:
    assert head_revision() == alembic_head_revision() != ""


def test_the_web_app_does_not_import_alembic() -> None:
    code = "import sys, server.app; print('alembic' in sys.modules, 'mako' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]

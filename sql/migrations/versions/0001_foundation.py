"""foundation

Revision ID: 0001_foundation
"""

from server.persistence.migrate import run_sql_file

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0001_foundation.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

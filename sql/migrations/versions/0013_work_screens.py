"""work_screens

Revision ID: 0013_work_screens
"""

from server.persistence.migrate import run_sql_file

revision = "0013_work_screens"
down_revision = "0012_reports_more"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0013_work_screens.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

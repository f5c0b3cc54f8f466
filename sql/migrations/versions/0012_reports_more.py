"""reports_more

Revision ID: 0012_reports_more
"""

from server.persistence.migrate import run_sql_file

revision = "0012_reports_more"
down_revision = "0011_alerts_more"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0012_reports_more.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

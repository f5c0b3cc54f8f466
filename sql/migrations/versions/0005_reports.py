"""reports

Revision ID: 0005_reports
"""

from server.persistence.migrate import run_sql_file

revision = "0005_reports"
down_revision = "0004_catalog"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0005_reports.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

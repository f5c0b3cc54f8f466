"""foundation_gaps

Revision ID: 0015_foundation_gaps
"""

from server.persistence.migrate import run_sql_file

revision = "0015_foundation_gaps"
down_revision = "0014_report_facts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0015_foundation_gaps.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

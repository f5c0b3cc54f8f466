"""report_facts

Revision ID: 0014_report_facts
"""

from server.persistence.migrate import run_sql_file

revision = "0014_report_facts"
down_revision = "0013_work_screens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0014_report_facts.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

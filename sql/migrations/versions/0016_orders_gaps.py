"""orders_gaps

Revision ID: 0016_orders_gaps
"""

from server.persistence.migrate import run_sql_file

revision = "0016_orders_gaps"
down_revision = "0015_foundation_gaps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0016_orders_gaps.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

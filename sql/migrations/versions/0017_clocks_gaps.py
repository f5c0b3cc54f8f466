"""clocks_gaps

Revision ID: 0017_clocks_gaps
"""

from server.persistence.migrate import run_sql_file

revision = "0017_clocks_gaps"
down_revision = "0016_orders_gaps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0017_clocks_gaps.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

"""clocks_more

Revision ID: 0009_clocks_more
"""

from server.persistence.migrate import run_sql_file

revision = "0009_clocks_more"
down_revision = "0008_orders_more"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0009_clocks_more.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

"""orders_more

Revision ID: 0008_orders_more
"""

from server.persistence.migrate import run_sql_file

revision = "0008_orders_more"
down_revision = "0007_foundation_more"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0008_orders_more.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

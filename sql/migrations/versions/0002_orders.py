"""orders

Revision ID: 0002_orders
"""

from server.persistence.migrate import run_sql_file

revision = "0002_orders"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0002_orders.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

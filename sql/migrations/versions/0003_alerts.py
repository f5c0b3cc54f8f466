"""alerts

Revision ID: 0003_alerts
"""

from server.persistence.migrate import run_sql_file

revision = "0003_alerts"
down_revision = "0002_orders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0003_alerts.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

"""alert channels

Revision ID: 0006_alert_channels
"""

from server.persistence.migrate import run_sql_file

revision = "0006_alert_channels"
down_revision = "0005_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0006_alert_channels.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

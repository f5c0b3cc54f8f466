"""foundation_more

Revision ID: 0007_foundation_more
"""

from server.persistence.migrate import run_sql_file

revision = "0007_foundation_more"
down_revision = "0006_alert_channels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0007_foundation_more.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

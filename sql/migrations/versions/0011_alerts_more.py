"""alerts_more

Revision ID: 0011_alerts_more
"""

from server.persistence.migrate import run_sql_file

revision = "0011_alerts_more"
down_revision = "0010_board_more"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0011_alerts_more.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

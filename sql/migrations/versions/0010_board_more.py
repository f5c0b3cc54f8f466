"""board_more

Revision ID: 0010_board_more
"""

from server.persistence.migrate import run_sql_file

revision = "0010_board_more"
down_revision = "0009_clocks_more"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0010_board_more.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

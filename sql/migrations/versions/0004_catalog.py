"""catalog

Revision ID: 0004_catalog
"""

from server.persistence.migrate import run_sql_file

revision = "0004_catalog"
down_revision = "0003_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0004_catalog.sql")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")

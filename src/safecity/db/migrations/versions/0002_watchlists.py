"""Governed watchlists (faces) and plate lists, with their entries and templates.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from safecity.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watchlists",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),  # face | plate
        sa.Column("threshold", sa.Float),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "watchlist_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("watchlist_id", sa.Integer, sa.ForeignKey("watchlists.id", ondelete="CASCADE"), nullable=False),
        sa.Column("label", sa.String(256), nullable=False),
        sa.Column("plate", sa.String(32)),
        sa.Column("legal_basis", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("authoriser", sa.String(256), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        # four eyes: an entry matches only once someone other than its author approved it
        sa.Column("approved_by", sa.String(256)),
        sa.Column("approved_at", UTCDateTime()),
    )
    op.create_index("ix_entries_watchlist", "watchlist_entries", ["watchlist_id"])
    op.create_index("ix_entries_plate", "watchlist_entries", ["plate"])
    op.create_table(
        "face_templates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "entry_id", sa.Integer, sa.ForeignKey("watchlist_entries.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("image_sha256", sa.String(64), nullable=False),
        sa.Column("quality", sa.Float, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_templates_entry", "face_templates", ["entry_id"])


def downgrade() -> None:
    op.drop_table("face_templates")
    op.drop_table("watchlist_entries")
    op.drop_table("watchlists")

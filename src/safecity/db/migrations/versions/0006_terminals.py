"""Access terminals: sites, consented enrolments with their templates, attempts and challenges.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Terminal templates live in their own tables, per site, and nothing joins them to the
watchlist tables: an access enrolment can never be matched against a watchlist, nor a
watchlist entry against a door. Each enrolment carries its consent record (who gave
it, when, how, recorded by whom); withdrawing consent deletes the enrolment and its
templates (the audit record of both remains).
"""

import sqlalchemy as sa
from alembic import op

from safecity.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "terminal_sites",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "terminal_enrolments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site_id", sa.Integer, sa.ForeignKey("terminal_sites.id", ondelete="CASCADE"), nullable=False),
        sa.Column("badge_digest", sa.String(64), nullable=False),
        sa.Column("label", sa.String(256), nullable=False),
        # the consent record: who consented, when, how, and who recorded it
        sa.Column("consent_subject", sa.String(256), nullable=False),
        sa.Column("consent_at", UTCDateTime(), nullable=False),
        sa.Column("consent_method", sa.String(256), nullable=False),
        sa.Column("consent_reference", sa.String(256), nullable=False),
        sa.Column("consent_recorded_by", sa.String(256), nullable=False),
        sa.Column("expires_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("site_id", "badge_digest", name="uq_terminal_enrolment_badge"),
    )
    op.create_table(
        "terminal_templates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "enrolment_id", sa.Integer, sa.ForeignKey("terminal_enrolments.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("quality", sa.Float, nullable=False),
        sa.Column("image_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_terminal_templates_enrolment", "terminal_templates", ["enrolment_id"])
    op.create_table(
        "terminal_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site_id", sa.Integer, sa.ForeignKey("terminal_sites.id", ondelete="CASCADE"), nullable=False),
        sa.Column("terminal", sa.String(128), nullable=False),
        sa.Column("badge_digest", sa.String(64)),
        sa.Column("ts", sa.Float, nullable=False),  # epoch seconds
        sa.Column("outcome", sa.String(16), nullable=False),  # granted | denied | refused | unlock
        sa.Column("decision_key", sa.String(64)),
    )
    op.create_index("ix_terminal_attempts_terminal", "terminal_attempts", ["site_id", "terminal", "ts"])
    op.create_index("ix_terminal_attempts_badge", "terminal_attempts", ["site_id", "badge_digest", "ts"])
    op.create_table(
        "terminal_challenges",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("site_id", sa.Integer, sa.ForeignKey("terminal_sites.id", ondelete="CASCADE"), nullable=False),
        sa.Column("terminal", sa.String(128), nullable=False),
        sa.Column("badge_digest", sa.String(64), nullable=False),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("issued_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float),
    )


def downgrade() -> None:
    op.drop_table("terminal_challenges")
    op.drop_table("terminal_attempts")
    op.drop_table("terminal_templates")
    op.drop_table("terminal_enrolments")
    op.drop_table("terminal_sites")

"""pgvector: face templates searchable inside PostgreSQL, for galleries shared by many machines.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

On PostgreSQL the templates get a ``vector(128)`` column with an HNSW index (inner
product), so every node of a cluster matches against the same gallery without
loading it. SQLite keeps only the raw bytes (matched in memory with FAISS).
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

DIM = 128


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(f"ALTER TABLE face_templates ADD COLUMN embedding vector({DIM})")
    op.execute(
        "CREATE INDEX ix_face_templates_embedding ON face_templates "
        "USING hnsw (embedding vector_ip_ops) WITH (m = 16, ef_construction = 64)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_face_templates_embedding")
    op.execute("ALTER TABLE face_templates DROP COLUMN IF EXISTS embedding")

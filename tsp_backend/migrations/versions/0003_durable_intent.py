"""Durable intent: an authorization is written before the issuer is asked.

Adds ``idempotency_keys.transaction_id`` — the transaction a claimed request wrote, so that the
retry that takes an abandoned claim over finishes that transaction instead of starting another —
and makes ``transactions.issuer_ref`` unique: one row per reference the issuer knows.
``transactions.status`` gains the value ``pending`` (no schema change: a string column).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply the durable-intent schema."""
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("transaction_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_idempotency_keys_transaction_id", ["transaction_id"], unique=False)
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index("uq_transactions_issuer_ref", ["issuer_ref"], unique=True)


def downgrade() -> None:
    """Revert to revision 0002."""
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index("uq_transactions_issuer_ref")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_keys_transaction_id")
        batch_op.drop_column("transaction_id")

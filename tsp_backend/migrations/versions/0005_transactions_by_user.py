"""Transactions by user: the owner's id on each transaction, and an index for the newest first.

``GET /api/transactions`` used to join every transaction to its card to find the user's, then
sort by time: a user with 10⁵ transactions read them all for the first page. Each row now
carries the ``user_id`` of the card it is written against (filled in for existing rows), with
an index on (user, time, id) that serves the first page and every cursor directly.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``transactions.user_id``, fill it from the cards, index (user, time, id)."""
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE transactions SET user_id = (SELECT cards.user_id FROM cards WHERE cards.id = transactions.card_id)"
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_transactions_user_id_users"), "users", ["user_id"], ["id"]
        )
        batch_op.create_index(
            "ix_transactions_user_id_created_at_id", ["user_id", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    """Revert to revision 0004."""
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_transactions_user_id_created_at_id")
        batch_op.drop_constraint(batch_op.f("fk_transactions_user_id_users"), type_="foreignkey")
        batch_op.drop_column("user_id")

"""Authorization: transaction status and issuer reference, limited-use key counts, domain controls.

Adds to ``transactions`` the ``status`` (approved, declined, in_doubt, reversed), the limited-use
key index, the issuer reference, the terminal key and the settlement time, with indexes on
(card, time) for the history and (status, time) for the reconciliation; adds ``luk_uses``
(one row per token and key index, unique) and the domain controls of ``cards``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply the authorization schema."""
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="declined")
        )
        batch_op.add_column(sa.Column("luk_index", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("issuer_ref", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("api_key_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_transactions_api_key_id_api_keys"), "api_keys", ["api_key_id"], ["id"]
        )
        batch_op.create_index("ix_transactions_card_id_created_at", ["card_id", "created_at"], unique=False)
        batch_op.create_index("ix_transactions_status_created_at", ["status", "created_at"], unique=False)
    op.execute("UPDATE transactions SET status = 'approved' WHERE approved")

    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("allowed_channels", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("allowed_merchants", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("blocked_mccs", sa.Text(), nullable=True))

    op.create_table(
        "luk_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("luk_index", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"], name=op.f("fk_luk_uses_card_id_cards")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_luk_uses")),
        sa.UniqueConstraint("card_id", "luk_index", name="uq_luk_uses_card_luk"),
    )


def downgrade() -> None:
    """Remove the authorization schema."""
    op.drop_table("luk_uses")
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.drop_column("blocked_mccs")
        batch_op.drop_column("allowed_merchants")
        batch_op.drop_column("allowed_channels")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_transactions_status_created_at")
        batch_op.drop_index("ix_transactions_card_id_created_at")
        batch_op.drop_constraint(batch_op.f("fk_transactions_api_key_id_api_keys"), type_="foreignkey")
        batch_op.drop_column("settled_at")
        batch_op.drop_column("api_key_id")
        batch_op.drop_column("issuer_ref")
        batch_op.drop_column("luk_index")
        batch_op.drop_column("status")

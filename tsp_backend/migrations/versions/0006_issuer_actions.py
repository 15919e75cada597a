"""Issuer actions: a card change the issuer asked for, and the script that carries it to the card.

One row per action (block, unblock, a new CVM limit): pending until an approved authorization of
the token, then the script MACed to that authorization, its delivery to the device and the
card's answer (:mod:`tsp_backend.services.issuer_actions`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0006", "0005"
branch_labels = depends_on = None


def upgrade() -> None:
    """Add the issuer_actions table."""
    op.create_table(
        "issuer_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("atc", sa.Integer(), nullable=True),
        sa.Column("script", sa.LargeBinary(), nullable=True),
        sa.Column("arpc", sa.LargeBinary(), nullable=True),
        sa.Column("sw", sa.String(length=4), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"], name=op.f("fk_issuer_actions_card_id_cards")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_issuer_actions_user_id_users")),
        sa.ForeignKeyConstraint(
            ["transaction_id"], ["transactions.id"], name=op.f("fk_issuer_actions_transaction_id_transactions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuer_actions")),
    )
    with op.batch_alter_table("issuer_actions", schema=None) as batch_op:
        batch_op.create_index("ix_issuer_actions_card_id_status", ["card_id", "status"], unique=False)


def downgrade() -> None:
    """Revert to revision 0005."""
    with op.batch_alter_table("issuer_actions", schema=None) as batch_op:
        batch_op.drop_index("ix_issuer_actions_card_id_status")
    op.drop_table("issuer_actions")

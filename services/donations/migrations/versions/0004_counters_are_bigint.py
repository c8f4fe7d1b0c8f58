"""counters are BIGINT

A campaign's donation count and receipt sequence, a donation's seq, and the
stock counters were INTEGER: on PostgreSQL the 43rd gift of 1,000,000 items of
one category overflowed `stock.received` ("integer out of range"). See the
arithmetic in models.py. (SQLite stores both alike; only the declared type changes.)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 23:59:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = {
    'campaigns': ('donation_count', 'last_receipt_seq'),
    'donations': ('seq',),
    'stock': ('received', 'dispatched'),
}


def upgrade() -> None:
    """Upgrade schema."""
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(column, existing_type=sa.Integer(), type_=sa.BigInteger(),
                                      existing_nullable=False)


def downgrade() -> None:
    """Downgrade schema."""
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(column, existing_type=sa.BigInteger(), type_=sa.Integer(),
                                      existing_nullable=False)

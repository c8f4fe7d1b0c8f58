"""gifts by month: an index on when each gift was received, for the monthly summary

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 16:00:00

"""
from typing import Sequence, Union

from alembic import op


revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index('ix_donations_created', 'donations', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_donations_created', table_name='donations')

"""alerts say what and where: a compound, and room for a message in words

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 12:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema. Alerts written before keep their fixed sentence and no compound."""
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('compound', sa.String(length=100), nullable=True))
        batch_op.alter_column('message', existing_type=sa.String(length=300), type_=sa.String(length=1000),
                              existing_nullable=False)


def downgrade() -> None:
    """Downgrade schema: messages longer than the old column are cut to fit."""
    op.execute("UPDATE alerts SET message = substr(message, 1, 300)")
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.alter_column('message', existing_type=sa.String(length=1000), type_=sa.String(length=300),
                              existing_nullable=False)
        batch_op.drop_column('compound')

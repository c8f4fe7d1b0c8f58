"""forgotten patrols: a patrol's counted minutes, closed automatically at the cap, corrected by the office

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 16:00:00.000000

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
    """Upgrade schema. Patrols finished before this have no duration_minutes: the
    service counts them from their times (services/patrol/domain.py minutes_counted)."""
    with op.batch_alter_table('patrols', schema=None) as batch_op:
        batch_op.add_column(sa.Column('duration_minutes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('closed_automatically', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('corrected_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('corrected_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('correction_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('patrols', schema=None) as batch_op:
        batch_op.drop_column('correction_reason')
        batch_op.drop_column('corrected_by')
        batch_op.drop_column('corrected_at')
        batch_op.drop_column('closed_automatically')
        batch_op.drop_column('duration_minutes')

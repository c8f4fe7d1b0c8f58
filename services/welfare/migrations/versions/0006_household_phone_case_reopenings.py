"""a household's contact phone; reopenings of closed cases

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 09:10:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=20), nullable=True))

    op.create_table('case_reopenings',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('reopened_by', sa.String(length=32), nullable=False),
    sa.Column('reopened_at', sa.DateTime(), nullable=False),
    sa.Column('previous_outcome', sa.Text(), nullable=True),
    sa.Column('previous_closed_at', sa.DateTime(), nullable=True),
    sa.Column('previous_closed_by', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('case_reopenings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_reopenings_case_id'), ['case_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_reopenings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_reopenings_case_id'))
    op.drop_table('case_reopenings')
    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.drop_column('phone')

"""consents of a household's people; erasure of closed cases after retention; a closed case's outcome kind

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 15:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('consents',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('household_id', sa.String(length=32), nullable=False),
    sa.Column('person_position', sa.Integer(), nullable=False),
    sa.Column('person_name', sa.String(length=100), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('given', sa.Boolean(), nullable=False),
    sa.Column('given_on', sa.Date(), nullable=False),
    sa.Column('recorded_by', sa.String(length=32), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['household_id'], ['households.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consents_household_id'), ['household_id'], unique=False)

    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome_kind', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('erased_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('erase_reason', sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f('ix_cases_erased_at'), ['erased_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_erased_at'))
        batch_op.drop_column('erase_reason')
        batch_op.drop_column('erased_by')
        batch_op.drop_column('erased_at')
        batch_op.drop_column('outcome_kind')
    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consents_household_id'))
    op.drop_table('consents')

"""audit of free text reads: who read an incident's description or a patrol's notes in full

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 23:50:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('audit_log',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('incident_id', sa.String(length=32), nullable=True),
    sa.Column('patrol_id', sa.String(length=32), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_at', 'audit_log', ['at', 'id'], unique=False)
    op.create_index('ix_audit_incident', 'audit_log', ['incident_id', 'at'], unique=False)
    op.create_index('ix_audit_patrol', 'audit_log', ['patrol_id', 'at'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_audit_patrol', table_name='audit_log')
    op.drop_index('ix_audit_incident', table_name='audit_log')
    op.drop_index('ix_audit_at', table_name='audit_log')
    op.drop_table('audit_log')

"""accounts the office controls: active, session_version; login delays per
(address, username) and per-address windows in place of the per-username lock

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 23:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))

    op.create_table('login_attempts',
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=40), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failed_at', sa.DateTime(), nullable=False),
    sa.Column('wait_until', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('address', 'username')
    )
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_attempts_last_failed_at'), ['last_failed_at'], unique=False)

    op.create_table('address_windows',
    sa.Column('scope', sa.String(length=20), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'address')
    )
    with op.batch_alter_table('address_windows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_address_windows_started_at'), ['started_at'], unique=False)

    # The per-username lock let anyone lock anyone out; its counts mean nothing now.
    with op.batch_alter_table('failed_logins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_failed_logins_last_failed_at'))
    op.drop_table('failed_logins')


def downgrade() -> None:
    op.create_table('failed_logins',
    sa.Column('username', sa.String(length=40), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failed_at', sa.DateTime(), nullable=False),
    sa.Column('locked_until', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('username')
    )
    with op.batch_alter_table('failed_logins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_failed_logins_last_failed_at'), ['last_failed_at'], unique=False)
    with op.batch_alter_table('address_windows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_address_windows_started_at'))
    op.drop_table('address_windows')
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_attempts_last_failed_at'))
    op.drop_table('login_attempts')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('session_version')
        batch_op.drop_column('active')

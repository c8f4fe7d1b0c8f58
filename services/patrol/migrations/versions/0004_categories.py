"""categories: the community's own incident categories, seeded with those it started with

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The incident categories the code knew before they became the community's own:
# (code, Chinese label, English label), in the order they are listed.
SEED = (
    ("dispute", "纠纷", "Dispute"),
    ("unsafe_structure", "危房隐患", "Unsafe structure"),
    ("stranger", "可疑人员", "Stranger"),
    ("fire_hazard", "消防隐患", "Fire hazard"),
    ("hardship", "困难群众", "Hardship"),
    ("other", "其他", "Other"),
)


def upgrade() -> None:
    """Upgrade schema."""
    categories = op.create_table('categories',
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('label_zh', sa.String(length=40), nullable=False),
    sa.Column('label_en', sa.String(length=40), nullable=False),
    sa.Column('retired', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.bulk_insert(categories, [{"code": code, "label_zh": zh, "label_en": en, "retired": False, "position": i}
                                for i, (code, zh, en) in enumerate(SEED)])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('categories')

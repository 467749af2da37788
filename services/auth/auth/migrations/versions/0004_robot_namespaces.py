"""A platform robot may be held to some namespaces (the library robot: library/ only).

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('accounts') as batch:
        batch.add_column(sa.Column('namespaces', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('namespaces')

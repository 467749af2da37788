"""Where an instance's ports answer, when its pool says so rather than the configuration: a swarm
pool's instances are its tasks, on nodes the swarm reports (their address with them).

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('instances') as batch:
        batch.add_column(sa.Column('address', sa.String(255), nullable=True))


def downgrade():
    with op.batch_alter_table('instances') as batch:
        batch.drop_column('address')

"""Auto-deploy: processed events, a deployment's waiting push and last push, a revision's push.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('processed_events',
        sa.Column('event_id', sa.String(length=36), nullable=False),
        sa.Column('event_type', sa.String(length=64), nullable=False),
        sa.Column('processed_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('event_id', name=op.f('pk_processed_events'))
    )
    with op.batch_alter_table('deployments') as batch:
        batch.add_column(sa.Column('pending_push', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('last_pushed_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('revisions') as batch:
        batch.add_column(sa.Column('push', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('revisions') as batch:
        batch.drop_column('push')
    with op.batch_alter_table('deployments') as batch:
        batch.drop_column('last_pushed_at')
        batch.drop_column('pending_push')
    op.drop_table('processed_events')

"""Dead letters filed for operators (catalog.dead_letters); the outbox's send attempts and back-off.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('dead_letters',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('queue', sa.String(length=255), nullable=False),
        sa.Column('source', sa.String(length=64), nullable=True),
        sa.Column('event_type', sa.String(length=64), nullable=True),
        sa.Column('event_id', sa.String(length=72), nullable=False),
        sa.Column('reason', sa.String(length=64), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('deliveries', sa.Integer(), nullable=True),
        sa.Column('deaths', sa.Integer(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('content_type', sa.String(length=64), nullable=True),
        sa.Column('headers', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('first_dead_at', sa.DateTime(), nullable=False),
        sa.Column('last_dead_at', sa.DateTime(), nullable=False),
        sa.Column('replays', sa.Integer(), nullable=False),
        sa.Column('replayed_at', sa.DateTime(), nullable=True),
        sa.Column('replayed_by', sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters')),
        sa.UniqueConstraint('queue', 'event_id', name=op.f('uq_dead_letters_queue_event_id'))
    )
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('next_attempt_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('next_attempt_at')
        batch.drop_column('attempts')
    op.drop_table('dead_letters')

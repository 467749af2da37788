"""Reconciliation with the registry: passes, the one-pass-at-a-time lock, tags found missing.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('resync_passes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('namespace', sa.String(length=255), nullable=True),
        sa.Column('trigger', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('repositories_total', sa.Integer(), nullable=True),
        sa.Column('repositories_scanned', sa.Integer(), nullable=False),
        sa.Column('tags_scanned', sa.Integer(), nullable=False),
        sa.Column('report', sa.JSON(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_resync_passes'))
    )
    lock = op.create_table('resync_lock',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('pass_id', sa.Integer(), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_resync_lock'))
    )
    # The lock is taken by updating this one row; it must exist before the first pass.
    op.bulk_insert(lock, [{'id': 1, 'pass_id': None, 'heartbeat_at': None}])
    op.create_table('resync_missing',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('repository', sa.String(length=255), nullable=False),
        sa.Column('tag', sa.String(length=128), nullable=False),
        sa.Column('digest', sa.String(length=100), nullable=False),
        sa.Column('first_missing_pass', sa.Integer(), nullable=False),
        sa.Column('first_missing_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_resync_missing')),
        sa.UniqueConstraint('repository', 'tag', name=op.f('uq_resync_missing_repository_tag'))
    )


def downgrade():
    op.drop_table('resync_missing')
    op.drop_table('resync_lock')
    op.drop_table('resync_passes')

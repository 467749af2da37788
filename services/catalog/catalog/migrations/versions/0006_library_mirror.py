"""The public library's upstream sources, its syncs and their items, the sync lock, mirrored tags.

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
    op.create_table('library_sources',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('registry', sa.String(length=255), nullable=False),
        sa.Column('repository', sa.String(length=255), nullable=False),
        sa.Column('tags', sa.JSON(), nullable=False),
        sa.Column('pattern', sa.String(length=128), nullable=True),
        sa.Column('versions', sa.String(length=128), nullable=True),
        sa.Column('newest', sa.Integer(), nullable=True),
        sa.Column('follow_removals', sa.Boolean(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('insecure', sa.Boolean(), nullable=False),
        sa.Column('credential', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('updated_by', sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_library_sources')),
        sa.UniqueConstraint('name', name=op.f('uq_library_sources_name'))
    )
    op.create_table('library_syncs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=255), nullable=True),
        sa.Column('trigger', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('sources', sa.JSON(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_library_syncs'))
    )
    op.create_table('library_sync_items',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('sync_id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=255), nullable=False),
        sa.Column('tag', sa.String(length=128), nullable=False),
        sa.Column('digest', sa.String(length=100), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('seconds', sa.Float(), nullable=True),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['sync_id'], ['library_syncs.id'], name=op.f('fk_library_sync_items_sync_id_library_syncs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_library_sync_items')),
        sa.UniqueConstraint('sync_id', 'source', 'tag', name=op.f('uq_library_sync_items_sync_id_source_tag'))
    )
    op.create_index(op.f('ix_library_sync_items_sync_id'), 'library_sync_items', ['sync_id'], unique=False)
    lock = op.create_table('library_sync_lock',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('sync_id', sa.Integer(), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
        sa.Column('seeded_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_library_sync_lock'))
    )
    # The lock is taken by updating this one row; it must exist before the first sync.
    op.bulk_insert(lock, [{'id': 1, 'sync_id': None, 'heartbeat_at': None, 'seeded_at': None}])
    op.create_table('library_mirrored_tags',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=255), nullable=False),
        sa.Column('tag', sa.String(length=128), nullable=False),
        sa.Column('digest', sa.String(length=100), nullable=False),
        sa.Column('mirrored_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_library_mirrored_tags')),
        sa.UniqueConstraint('source', 'tag', name=op.f('uq_library_mirrored_tags_source_tag'))
    )


def downgrade():
    op.drop_table('library_mirrored_tags')
    op.drop_table('library_sync_lock')
    op.drop_index(op.f('ix_library_sync_items_sync_id'), table_name='library_sync_items')
    op.drop_table('library_sync_items')
    op.drop_table('library_syncs')
    op.drop_table('library_sources')

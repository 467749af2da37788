"""Initial catalogue schema: repositories, manifests, tags, tag history, processed and set-aside events.

Datetimes are naive UTC (shared.runtime.db.UTCDateTime gives them back aware).

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('processed_events',
        sa.Column('event_id', sa.String(length=36), nullable=False),
        sa.Column('processed_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('event_id', name=op.f('pk_processed_events'))
    )
    op.create_table('repositories',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('namespace', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('is_public', sa.Boolean(), nullable=False),
        sa.Column('is_ownbase', sa.Boolean(), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('overview', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_repositories')),
        sa.UniqueConstraint('namespace', 'name', name=op.f('uq_repositories_namespace_name'))
    )
    op.create_table('set_aside_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('source_event_id', sa.String(length=255), nullable=True),
        sa.Column('action', sa.String(length=64), nullable=True),
        sa.Column('repository', sa.String(length=255), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=True),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('event_id', sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_set_aside_events'))
    )
    op.create_table('tag_history',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('repository', sa.String(length=255), nullable=False),
        sa.Column('tag', sa.String(length=128), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('digest', sa.String(length=100), nullable=True),
        sa.Column('previous_digest', sa.String(length=100), nullable=True),
        sa.Column('actor', sa.String(length=255), nullable=True),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('event_id', sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tag_history'))
    )
    op.create_index('ix_tag_history_repository_tag', 'tag_history', ['repository', 'tag'])
    op.create_table('manifests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('repository_id', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=100), nullable=False),
        sa.Column('media_type', sa.String(length=255), nullable=False),
        sa.Column('manifest_size', sa.Integer(), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=True),
        sa.Column('image_id', sa.String(length=100), nullable=True),
        sa.Column('created', sa.DateTime(), nullable=True),
        sa.Column('creator', sa.String(length=255), nullable=True),
        sa.Column('architecture', sa.String(length=64), nullable=True),
        sa.Column('os', sa.String(length=64), nullable=True),
        sa.Column('variant', sa.String(length=64), nullable=True),
        sa.Column('layers', sa.JSON(), nullable=False),
        sa.Column('platforms', sa.JSON(), nullable=True),
        sa.Column('indexed_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('fk_manifests_repository_id_repositories'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_manifests')),
        sa.UniqueConstraint('repository_id', 'digest', name=op.f('uq_manifests_repository_id_digest'))
    )
    op.create_table('tags',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('repository_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('manifest_id', sa.Integer(), nullable=False),
        sa.Column('pushed_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['manifest_id'], ['manifests.id'], name=op.f('fk_tags_manifest_id_manifests')),
        sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('fk_tags_repository_id_repositories'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tags')),
        sa.UniqueConstraint('repository_id', 'name', name=op.f('uq_tags_repository_id_name'))
    )
    op.create_index(op.f('ix_tags_manifest_id'), 'tags', ['manifest_id'])


def downgrade():
    op.drop_index(op.f('ix_tags_manifest_id'), table_name='tags')
    op.drop_table('tags')
    op.drop_table('manifests')
    op.drop_index('ix_tag_history_repository_tag', table_name='tag_history')
    op.drop_table('tag_history')
    op.drop_table('set_aside_events')
    op.drop_table('repositories')
    op.drop_table('processed_events')

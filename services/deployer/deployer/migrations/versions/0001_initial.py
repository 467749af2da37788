"""Initial deployer schema: deployments, revisions, instances.

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

LIVE = sa.text('deleted_at IS NULL')


def upgrade():
    op.create_table('deployments',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('tenant_id', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=63), nullable=False),
        sa.Column('pool', sa.String(length=63), nullable=False),
        sa.Column('replicas', sa.Integer(), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('serving_revision', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('auto_deploy', sa.JSON(), nullable=False),
        sa.Column('operation', sa.String(length=32), nullable=True),
        sa.Column('operation_id', sa.String(length=36), nullable=True),
        sa.Column('operation_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('deleted_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_deployments'))
    )
    op.create_index(op.f('ix_deployments_tenant_id'), 'deployments', ['tenant_id'])
    # A name is unique among a tenant's live deployments (partial index on both databases).
    op.create_index('uq_deployments_tenant_id_name_live', 'deployments', ['tenant_id', 'name'], unique=True,
                    sqlite_where=LIVE, postgresql_where=LIVE)
    op.create_table('revisions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('deployment_id', sa.String(length=36), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('image', sa.String(length=512), nullable=False),
        sa.Column('repository', sa.String(length=255), nullable=False),
        sa.Column('tag', sa.String(length=128), nullable=False),
        sa.Column('digest', sa.String(length=100), nullable=False),
        sa.Column('pull_ref', sa.String(length=512), nullable=False),
        sa.Column('spec', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('trigger', sa.String(length=32), nullable=False),
        sa.Column('rollback_to', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'],
                                name=op.f('fk_revisions_deployment_id_deployments'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_revisions')),
        sa.UniqueConstraint('deployment_id', 'number', name=op.f('uq_revisions_deployment_id_number'))
    )
    op.create_table('instances',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('deployment_id', sa.String(length=36), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('pool', sa.String(length=63), nullable=False),
        sa.Column('host', sa.String(length=63), nullable=False),
        sa.Column('container_name', sa.String(length=255), nullable=False),
        sa.Column('container_id', sa.String(length=80), nullable=True),
        sa.Column('state', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('ports', sa.JSON(), nullable=False),
        sa.Column('port_domain', sa.String(length=130), nullable=False),
        sa.Column('cpu', sa.Float(), nullable=False),
        sa.Column('memory', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'],
                                name=op.f('fk_instances_deployment_id_deployments'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_instances'))
    )
    op.create_index(op.f('ix_instances_deployment_id'), 'instances', ['deployment_id'])
    op.create_index(op.f('ix_instances_host'), 'instances', ['host'])


def downgrade():
    op.drop_index(op.f('ix_instances_host'), table_name='instances')
    op.drop_index(op.f('ix_instances_deployment_id'), table_name='instances')
    op.drop_table('instances')
    op.drop_table('revisions')
    op.drop_index('uq_deployments_tenant_id_name_live', table_name='deployments')
    op.drop_index(op.f('ix_deployments_tenant_id'), table_name='deployments')
    op.drop_table('deployments')

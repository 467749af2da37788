"""Sessions ended before their identity expires (auth.sign_out, asked by auth.get_session).

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
    op.create_table('ended_sessions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('account', sa.String(length=200), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ended_sessions'))
    )
    op.create_index(op.f('ix_ended_sessions_expires_at'), 'ended_sessions', ['expires_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_ended_sessions_expires_at'), table_name='ended_sessions')
    op.drop_table('ended_sessions')

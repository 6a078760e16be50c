"""viewer renditions: page images per version, preview status, time on the document per view

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models.base

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('version_pages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('object_key', sa.String(length=255), nullable=False),
    sa.Column('media_type', sa.String(length=32), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['document_versions.id'],
                            name=op.f('fk_version_pages_version_id_document_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_version_pages')),
    sa.UniqueConstraint('object_key', name=op.f('uq_version_pages_object_key')),
    sa.UniqueConstraint('version_id', 'number', name=op.f('uq_version_pages_version_id'))
    )
    with op.batch_alter_table('version_pages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_version_pages_version_id'), ['version_id'], unique=False)
    with op.batch_alter_table('document_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preview', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('preview_reason', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('page_count', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('document_views', schema=None) as batch_op:
        batch_op.add_column(sa.Column('window_ends_at', vault.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('seconds_open', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('pages_seen', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('last_seen_at', vault.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_at', vault.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_document_views_closed_at'), ['closed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('document_views', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_views_closed_at'))
        batch_op.drop_column('closed_at')
        batch_op.drop_column('last_seen_at')
        batch_op.drop_column('pages_seen')
        batch_op.drop_column('seconds_open')
        batch_op.drop_column('window_ends_at')
    with op.batch_alter_table('document_versions', schema=None) as batch_op:
        batch_op.drop_column('page_count')
        batch_op.drop_column('preview_reason')
        batch_op.drop_column('preview')
    with op.batch_alter_table('version_pages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_version_pages_version_id'))
    op.drop_table('version_pages')

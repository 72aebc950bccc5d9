"""what decisions read is audited too: regions, replay hashes, rule keys, liveness frames, inspection photos and
employment figures join the chain (each row already there recorded once, by the system); a register extract's rows
are held by a digest its audited import record keeps; the public notice is sealed with the audit key

Revision ID: 0035
Revises: 0034
"""

import sqlalchemy as sa
from alembic import op

from models.audit import SYSTEM, append_audit, columns_detail, key_of
from models.audit_rows import ExtractDigest
from models.tables import Base

revision = '0035'
down_revision = '0034'
branch_labels = None
depends_on = None

NEWLY_AUDITED = ('regions', 'rule_subjects', 'photo_hashes', 'checkin_frames', 'inspection_photos',
                 'institution_employment')
ROW_TABLES = {'insurance': 'register_insurance', 'employment': 'register_employment',
              'certificates': 'register_certificates', 'teachers': 'register_teachers', 'vouchers': 'register_vouchers'}
PAGE = 5000


def model_columns(conn: sa.Connection, name: str) -> tuple[sa.Table, list[sa.Column]]:
    """The model's table and those of its columns this database has now (read with the model's types, as the audit
    check reads them: times in UTC)."""
    model = Base.metadata.tables[name]
    present = {c['name'] for c in sa.inspect(conn).get_columns(name)}
    return model, [c for c in model.columns if c.name in present]


def record_existing(conn: sa.Connection, name: str) -> int:
    table, columns = model_columns(conn, name)
    order = list(table.primary_key.columns)
    done = 0
    while True:
        page = conn.execute(sa.select(*columns).order_by(*order).limit(PAGE).offset(done)).mappings().all()
        for row in page:
            value_of = row.get  # (a column this database does not have yet reads None)
            append_audit(conn, f'{name}.insert', name, key_of(table, lambda c, v=value_of: v(c.key)),
                         columns_detail(table, lambda c, v=value_of: v(c.key)), SYSTEM)
        done += len(page)
        if len(page) < PAGE:
            return done


def upgrade() -> None:
    op.add_column('register_imports', sa.Column('rows_sha256', sa.String(length=64), nullable=True))
    op.add_column('public_notices', sa.Column('seal', sa.String(length=200), nullable=True))
    conn = op.get_bind()
    counts = {name: record_existing(conn, name) for name in NEWLY_AUDITED}
    imports = conn.execute(sa.text("SELECT id, source FROM register_imports WHERE state IN ('preview', 'committed') "
                                   "ORDER BY id")).all()
    for import_id, source in imports:
        table, columns = model_columns(conn, ROW_TABLES[source])
        digest = ExtractDigest()
        for row in conn.execute(sa.select(*columns).where(table.c.import_id == import_id)
                                .order_by(table.c.row_number, table.c.id)
                                .execution_options(yield_per=PAGE)).mappings():
            digest.add(row)
        conn.execute(sa.text('UPDATE register_imports SET rows_sha256 = :d WHERE id = :i'),
                     {'d': digest.hexdigest(), 'i': import_id})
        append_audit(conn, 'register_imports.update', 'register_imports', import_id,
                     {'rows_sha256': digest.hexdigest()}, SYSTEM)
    if any(counts.values()) or imports:
        append_audit(conn, 'migrate', 'audit', revision,
                     {'migration': revision, 'recorded': counts, 'extracts_digested': len(imports)}, SYSTEM)


def downgrade() -> None:
    with op.batch_alter_table('public_notices') as batch:
        batch.drop_column('seal')
    with op.batch_alter_table('register_imports') as batch:
        batch.drop_column('rows_sha256')

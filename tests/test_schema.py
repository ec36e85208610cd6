"""The hand-written MySQL DDL in ``db/`` and the SQLAlchemy models describe the same schema.

MariaDB/MySQL databases are built only from ``db/schema-*.sql``; SQLite ones only from the
models. These tests apply the scripts through :meth:`Database.create_schema`, reflect the
result and compare it with ``Base.metadata``, table by table: columns (type, nullability,
auto increment), primary keys, unique keys, indexes and foreign keys, all by name. Every
table registered by ``cloudstack_kms.models`` is covered, so a new model needs its DDL.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from sqlalchemy import ForeignKeyConstraint, Index, Table, UniqueConstraint, func, inspect, select
from sqlalchemy.engine import Dialect, Engine

from cloudstack_kms.db import UPGRADE_SCRIPTS, Database, run_ddl, schema_dir, split_sql
from cloudstack_kms.models import Base, Version

pytestmark = pytest.mark.mysql

MYSQL_ONLY = "compares the DDL in db/*.sql with the models, which needs MariaDB/MySQL: set KMS_TEST_MYSQL_URL"

_INTEGER = re.compile(r"(TINYINT|SMALLINT|MEDIUMINT|INT|INTEGER|BIGINT)(?:\(\d+\))?( UNSIGNED)?( ZEROFILL)?")
_BOOLEAN = re.compile(r"(BOOL|BOOLEAN|TINYINT\(1\))( UNSIGNED)?")


# --------------------------------------------------------------------------- normal forms
def normalise_type(compiled: str) -> str:
    """One spelling per MySQL type, e.g. ``BIGINT(20) UNSIGNED`` -> ``BIGINT UNSIGNED``.

    Integer display widths and the collation are dropped; signedness, lengths and an explicit
    character set are kept. ``BOOL`` (what SQLAlchemy's Boolean renders) is ``tinyint(1)``.
    """
    t = re.sub(r"\s+", " ", compiled.upper()).strip()
    t = re.sub(r" COLLATE \S+", "", t)
    if _BOOLEAN.fullmatch(t):
        return "BOOL"
    m = _INTEGER.fullmatch(t)
    if m:
        return ("INT" if m[1] == "INTEGER" else m[1]) + (" UNSIGNED" if m[2] else "")
    return re.sub(r"^(DATETIME|TIMESTAMP|TIME)\(0\)", r"\1", t)


def normalise_rule(rule: str | None) -> str | None:
    """ON DELETE / ON UPDATE: MySQL's default, RESTRICT, is the same as NO ACTION or nothing."""
    rule = (rule or "").upper()
    return None if rule in ("", "RESTRICT", "NO ACTION") else rule


@dataclass
class TableShape:
    """One table, in a form both the models and the reflected database can be put into."""

    columns: dict[str, tuple[str, bool, bool]] = field(default_factory=dict)  # type, nullable, auto inc.
    primary_key: tuple[str, ...] = ()
    unique: dict[str, tuple[str, ...]] = field(default_factory=dict)
    indexes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    foreign_keys: dict[str, tuple] = field(default_factory=dict)  # cols, table, ref cols, ondelete, onupdate


def _name(name: object, kind: str, cols: tuple[str, ...], problems: list[str], table: str) -> str:
    if name is None:
        problems.append(f"{table}: {kind} on {cols} has no explicit name in the models")
        return f"<unnamed {kind} {', '.join(cols)}>"
    return str(name)


def model_shape(table: Table, dialect: Dialect, problems: list[str]) -> TableShape:
    shape = TableShape()
    auto = table.autoincrement_column
    for col in table.columns:
        shape.columns[col.name] = (normalise_type(col.type.compile(dialect=dialect)), bool(col.nullable),
                                   col is auto)
    shape.primary_key = tuple(c.name for c in table.primary_key.columns)
    for cons in table.constraints:
        cols = tuple(c.name for c in cons.columns)
        if isinstance(cons, UniqueConstraint):
            shape.unique[_name(cons.name, "unique key", cols, problems, table.name)] = cols
        elif isinstance(cons, ForeignKeyConstraint):
            shape.foreign_keys[_name(cons.name, "foreign key", cols, problems, table.name)] = (
                cols, cons.referred_table.name, tuple(fk.column.name for fk in cons.elements),
                normalise_rule(cons.ondelete), normalise_rule(cons.onupdate))
    for index in table.indexes:
        assert isinstance(index, Index)
        cols = tuple(c.name for c in index.columns)
        target = shape.unique if index.unique else shape.indexes
        target[_name(index.name, "unique index" if index.unique else "index", cols, problems, table.name)] = cols
    return shape


def reflected_shape(engine: Engine, table: str) -> TableShape:
    insp = inspect(engine)
    shape = TableShape()
    for col in insp.get_columns(table):
        shape.columns[col["name"]] = (normalise_type(col["type"].compile(dialect=engine.dialect)),
                                      bool(col["nullable"]), col.get("autoincrement") is True)
    shape.primary_key = tuple(insp.get_pk_constraint(table)["constrained_columns"])
    for fk in insp.get_foreign_keys(table):
        opts = fk.get("options", {})
        shape.foreign_keys[fk["name"]] = (tuple(fk["constrained_columns"]), fk["referred_table"],
                                          tuple(fk["referred_columns"]), normalise_rule(opts.get("ondelete")),
                                          normalise_rule(opts.get("onupdate")))
    # MySQL reports a unique key both as a unique constraint and as a unique index.
    for uc in insp.get_unique_constraints(table):
        shape.unique[uc["name"]] = tuple(uc["column_names"])
    for ix in insp.get_indexes(table):
        cols = tuple(ix["column_names"])
        if ix["unique"]:
            shape.unique[ix["name"]] = cols
        else:
            shape.indexes[ix["name"]] = cols
    return shape


def _drop_implicit_fk_indexes(db: TableShape, model: TableShape) -> None:
    """InnoDB adds an index named after a foreign key that no index covers; that is no drift."""
    for name, (cols, *_rest) in db.foreign_keys.items():
        if db.indexes.get(name) == cols and name not in model.indexes:
            del db.indexes[name]


# ----------------------------------------------------------------------------- comparing
def _compare_named(where: str, kind: str, model: dict, db: dict, out: list[str]) -> None:
    for name in sorted(model.keys() - db.keys()):
        out.append(f"{where}: {kind} `{name}` {model[name]} is in the models, not in the DDL")
    for name in sorted(db.keys() - model.keys()):
        out.append(f"{where}: {kind} `{name}` {db[name]} is in the DDL, not in the models")
    for name in sorted(model.keys() & db.keys()):
        if model[name] != db[name]:
            out.append(f"{where}: {kind} `{name}` is {model[name]} in the models but {db[name]} in the DDL")


def compare_table(name: str, model: TableShape, db: TableShape) -> list[str]:
    out: list[str] = []
    _drop_implicit_fk_indexes(db, model)
    for col in [c for c in model.columns if c not in db.columns]:
        out.append(f"{name}.{col}: column is in the models, not in the DDL")
    for col in [c for c in db.columns if c not in model.columns]:
        out.append(f"{name}.{col}: column is in the DDL, not in the models")
    for col in [c for c in model.columns if c in db.columns]:
        (m_type, m_null, m_auto), (d_type, d_null, d_auto) = model.columns[col], db.columns[col]
        if m_type != d_type:
            out.append(f"{name}.{col}: type {m_type} in the models, {d_type} in the DDL")
        if m_null != d_null:
            out.append(f"{name}.{col}: {'NULL' if m_null else 'NOT NULL'} in the models, "
                       f"{'NULL' if d_null else 'NOT NULL'} in the DDL")
        if m_auto != d_auto:
            out.append(f"{name}.{col}: AUTO_INCREMENT is {m_auto} in the models, {d_auto} in the DDL")
    if model.primary_key != db.primary_key:
        out.append(f"{name}: primary key {model.primary_key} in the models, {db.primary_key} in the DDL")
    _compare_named(name, "unique key", model.unique, db.unique, out)
    _compare_named(name, "index", model.indexes, db.indexes, out)
    _compare_named(name, "foreign key (columns, table, columns, on delete, on update)",
                   model.foreign_keys, db.foreign_keys, out)
    return out


def schema_differences(engine: Engine) -> list[str]:
    out: list[str] = []
    model_tables = set(Base.metadata.tables)
    db_tables = set(inspect(engine).get_table_names())
    out += [f"{t}: table is in the models, not in the DDL" for t in sorted(model_tables - db_tables)]
    out += [f"{t}: table is in the DDL, not in the models" for t in sorted(db_tables - model_tables)]
    for name in sorted(model_tables & db_tables):
        model = model_shape(Base.metadata.tables[name], engine.dialect, out)
        out += compare_table(name, model, reflected_shape(engine, name))
    return out


def snapshot(engine: Engine) -> dict[str, TableShape]:
    return {t: reflected_shape(engine, t) for t in sorted(inspect(engine).get_table_names())}


# --------------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def schema_db(database_factory):
    """A fresh database of the backend under test with the schema created once."""
    db = Database(database_factory("schema"))
    first = db.create_schema()
    yield db, first
    db.dispose()


def test_create_schema_makes_every_model_table(schema_db):
    db, first = schema_db
    assert first == UPGRADE_SCRIPTS
    missing = set(Base.metadata.tables) - set(inspect(db.engine).get_table_names())
    assert not missing, f"tables of the models not created: {sorted(missing)}"
    with db.transaction() as s:
        assert set(s.scalars(select(Version.version))) == set(UPGRADE_SCRIPTS)


def test_create_schema_twice_is_a_noop(schema_db):
    db, _first = schema_db
    before = snapshot(db.engine)
    assert db.create_schema() == []
    assert snapshot(db.engine) == before
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Version)) == len(UPGRADE_SCRIPTS)


def test_ddl_matches_models(schema_db, backend):
    if backend != "mysql":
        pytest.skip(MYSQL_ONLY)
    db, _first = schema_db
    differences = schema_differences(db.engine)
    assert not differences, (f"db/*.sql and cloudstack_kms/models disagree ({len(differences)}):\n  "
                             + "\n  ".join(differences))


def test_ddl_scripts_can_run_again(schema_db, backend):
    """Every key is declared inside CREATE TABLE IF NOT EXISTS, and a column or index added by a
    later step is skipped when present (``run_ddl``, as ``db init`` runs them), so a rerun
    changes nothing."""
    if backend != "mysql":
        pytest.skip(MYSQL_ONLY)
    db, _first = schema_db
    before = snapshot(db.engine)
    with db.engine.begin() as conn:
        for script in UPGRADE_SCRIPTS:
            for statement in split_sql((schema_dir() / script).read_text()):
                run_ddl(conn, statement)
    assert snapshot(db.engine) == before


def test_normalise_type():
    """The normal forms the comparison relies on (no database needed)."""
    assert normalise_type("BIGINT(20) UNSIGNED") == normalise_type("BIGINT UNSIGNED") == "BIGINT UNSIGNED"
    assert normalise_type("INTEGER(1) UNSIGNED") == normalise_type("INTEGER UNSIGNED") == "INT UNSIGNED"
    assert normalise_type("INTEGER(11)") == normalise_type("INTEGER") == "INT"
    assert normalise_type("INT") != normalise_type("BIGINT")
    assert normalise_type("TINYINT(1)") == normalise_type("BOOL") == "BOOL"
    assert normalise_type("TINYINT(4)") == "TINYINT"
    assert normalise_type("VARCHAR(40)") != normalise_type("VARCHAR(255)")
    assert (normalise_type("VARCHAR(8191) CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci")
            == normalise_type("VARCHAR(8191) CHARACTER SET utf8mb3"))
    assert normalise_type("DATETIME") == "DATETIME"
    assert normalise_type("TEXT") == "TEXT"


def test_an_older_sqlite_database_gets_the_new_columns_and_indexes(tmp_path):
    """SQLite is built from the models, and ``create_all`` makes only missing tables: a database
    made before a column was added (here the deletion safety net's) must get it on ``db init``."""
    import sqlite3

    path = tmp_path / "old.db"
    database = Database(f"sqlite:///{path}")
    database.create_schema()
    database.dispose()
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX idx_deletion_date")
    conn.execute("ALTER TABLE kms_keys DROP COLUMN deletion_date")
    conn.execute("ALTER TABLE kms_keys DROP COLUMN enabled_before_deletion")
    conn.commit()
    conn.close()

    database = Database(f"sqlite:///{path}")
    try:
        database.create_schema()
        columns = {c["name"] for c in inspect(database.engine).get_columns("kms_keys")}
        indexes = {i["name"] for i in inspect(database.engine).get_indexes("kms_keys")}
    finally:
        database.dispose()
    assert {"deletion_date", "enabled_before_deletion"} <= columns
    assert "idx_deletion_date" in indexes

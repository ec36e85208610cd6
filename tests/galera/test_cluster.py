"""Smoke tests of the Galera fixture, and the two Galera facts the product must handle.

A 3-node MariaDB Galera cluster (tests/support/galera.py, started once per session) shows:

1. a row written through node 1 is read through nodes 2 and 3 (given ``wsrep_sync_wait``: a
   node applies others' writesets a little after they commit);
2. ``GET_LOCK`` is local to a node: the same name is granted on node 1 and node 2 at once, so
   it cannot serialise work across a cluster;
3. two transactions updating one row through two nodes both run; the second to COMMIT fails
   with 1213 (deadlock: Galera's certification conflict), so callers must retry;
4. a node stopped and started again catches up by IST with what was written meanwhile;
5. cloudstack-kms runs on it: ``db init`` through node 1 (every table has a primary key, as
   Galera requires), then a server on node 2, with the same master key, answers signed calls.

Heavy: it runs on the MariaDB pass only (see conftest.py).
"""
from __future__ import annotations

import secrets

import pytest

from tests.support.client import Client
from tests.support.galera import GaleraCluster
from tests.support.server import KmsEnv, ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.mysql]

ER_LOCK_DEADLOCK = 1213


class Sql:
    """Statements through a chosen node, on the smoke-test database."""

    def __init__(self, galera: GaleraCluster, database: str) -> None:
        self.galera = galera
        self.database = database

    def table(self, label: str) -> str:
        """A fresh table ``(id INT PRIMARY KEY, v INT)`` made through node 1; returns its name."""
        name = f"{label}_{secrets.token_hex(3)}"
        self(1, f"CREATE TABLE `{name}` (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB", sync_wait=False)
        return name

    def __call__(self, node: int, statement: str, args: tuple = (), sync_wait: bool = True) -> list[tuple]:
        """One statement through ``node`` in its own connection, committed; returns the rows.
        ``sync_wait``: first wait for the node to apply what was committed anywhere before
        (``wsrep_sync_wait``), so that a read sees the writes made through other nodes."""
        conn = self.galera.connect(node, self.database)
        try:
            cur = conn.cursor()
            if sync_wait:
                cur.execute("SET SESSION wsrep_sync_wait = 3")  # reads, UPDATE and DELETE
            cur.execute(statement, args)
            rows = list(cur.fetchall())
            conn.commit()
            return rows
        finally:
            conn.close()


@pytest.fixture()
def sql(galera, galera_database) -> Sql:
    return Sql(galera, galera_database)


def test_cluster_is_whole(galera):
    for i in (1, 2, 3):
        status = galera.status(i)
        assert status["wsrep_cluster_size"] == "3", status
        assert status["wsrep_cluster_status"] == "Primary", status
        assert status["wsrep_local_state_comment"] == "Synced", status
        assert status["wsrep_ready"] == "ON", status
    assert len({galera.status(i)["wsrep_cluster_state_uuid"] for i in (1, 2, 3)}) == 1


def test_row_written_on_node1_is_read_on_nodes_2_and_3(sql):
    table = sql.table("replication")
    sql(1, f"INSERT INTO `{table}` (id, v) VALUES (1, 42)", sync_wait=False)
    for node in (2, 3):
        assert sql(node, f"SELECT id, v FROM `{table}`") == [(1, 42)], f"node {node}"


def test_get_lock_is_local_to_a_node(galera):
    """Documents why the product must not rely on GET_LOCK for cluster-wide mutual exclusion."""
    name = f"kms-galera-{secrets.token_hex(4)}"
    holder = galera.connect(1)
    same_node = galera.connect(1)
    other_node = galera.connect(2)
    try:
        cur = holder.cursor()
        cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
        assert cur.fetchone() == (1,)
        cur = same_node.cursor()
        cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
        assert cur.fetchone() == (0,), "on one node, GET_LOCK excludes as usual"
        cur = other_node.cursor()
        cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
        assert cur.fetchone() == (1,), "on another node the same lock is granted at the same time"
        cur.execute("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (name,))
        assert cur.fetchone() == (1,)
    finally:
        for conn in (holder, same_node, other_node):
            conn.close()  # releases the locks


def test_concurrent_updates_through_two_nodes_conflict_at_commit(galera, sql):
    import MySQLdb

    table = sql.table("conflict")
    sql(1, f"INSERT INTO `{table}` (id, v) VALUES (1, 0)", sync_wait=False)
    galera.wait_applied(2)
    first, second = galera.connect(1, sql.database), galera.connect(2, sql.database)
    try:
        cur1, cur2 = first.cursor(), second.cursor()
        # Both transactions begin and update the row, each on its own node: no lock is shared.
        cur1.execute("BEGIN")
        cur2.execute("BEGIN")
        assert cur1.execute(f"UPDATE `{table}` SET v = 1 WHERE id = 1") == 1
        assert cur2.execute(f"UPDATE `{table}` SET v = 2 WHERE id = 1") == 1
        first.commit()  # certified first: wins
        with pytest.raises(MySQLdb.OperationalError) as lost:
            second.commit()  # certification conflict (or aborted by node 1's applied writeset)
        assert lost.value.args[0] == ER_LOCK_DEADLOCK, lost.value
    finally:
        first.close()
        second.close()
    for node in (1, 2, 3):
        assert sql(node, f"SELECT v FROM `{table}` WHERE id = 1") == [(1,)], f"node {node}"


def test_stopped_node_rejoins_by_ist_and_sees_rows_written_meanwhile(galera, sql):
    table = sql.table("rejoin")
    sql(1, f"INSERT INTO `{table}` (id, v) VALUES (1, 1)", sync_wait=False)
    galera.wait_applied(3)
    galera.stop_node(3)
    assert galera.status(1)["wsrep_cluster_size"] == "2"
    for i in range(2, 12):  # written while node 3 is down, through both remaining nodes
        sql(1 + i % 2, f"INSERT INTO `{table}` (id, v) VALUES (%s, %s)", (i, i), sync_wait=False)
    transfer = galera.start_node(3)
    assert transfer == "IST", f"node 3 rejoined by {transfer}, not IST:\n{galera.node(3).log_since_start()[-3000:]}"
    assert sql(3, f"SELECT COUNT(*), SUM(v) FROM `{table}`") == [(11, 1 + sum(range(2, 12)))]
    assert galera.status(3)["wsrep_cluster_size"] == "3"


def test_cloudstack_kms_runs_on_the_cluster(galera, tmp_path):
    database = f"kms_{secrets.token_hex(3)}"
    galera.create_database(database)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    on_node1 = KmsEnv(db_url=galera.url(1, database), data_dir=data_dir)
    out = on_node1.init()  # wsrep_mode=REQUIRED_PRIMARY_KEY: a table without one fails here
    assert "admin password" in out, out

    conn = galera.connect(2, database)
    try:
        cur = conn.cursor()
        cur.execute("SET SESSION wsrep_sync_wait = 1")
        cur.execute("""
            SELECT t.table_name FROM information_schema.tables t
            WHERE t.table_schema = %s AND t.table_type = 'BASE TABLE' AND NOT EXISTS (
                SELECT 1 FROM information_schema.table_constraints c
                WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name
                  AND c.constraint_type = 'PRIMARY KEY')""", (database,))
        missing = sorted(name for (name,) in cur.fetchall())
        assert missing == [], f"Galera needs a primary key on every table; these have none: {missing}"
        cur.execute("SELECT table_name, engine FROM information_schema.tables "
                    "WHERE table_schema = %s AND table_type = 'BASE TABLE' AND engine <> 'InnoDB'", (database,))
        others = sorted(cur.fetchall())
        assert others == [], f"Galera replicates InnoDB tables only; these are not: {others}"
    finally:
        conn.close()

    galera.wait_applied(2)  # node 2 has applied the schema and seed rows written through node 1
    on_node2 = KmsEnv(db_url=galera.url(2, database), data_dir=data_dir)  # same master key file
    keys = on_node2.admin_keys()
    server = ServerProcess(on_node2, log_path=tmp_path / "server.log").start()
    try:
        admin = Client(server.url, keys["apikey"], keys["secretkey"])
        zones = admin.ok("listZones")
        assert isinstance(zones, dict), zones
        # The keys registered through node 2 are in node 1's copy too.
        conn = galera.connect(1, database)
        try:
            cur = conn.cursor()
            cur.execute("SET SESSION wsrep_sync_wait = 1")
            cur.execute("SELECT COUNT(*) FROM `user` WHERE api_key = %s", (keys["apikey"],))
            assert cur.fetchone() == (1,)
        finally:
            conn.close()
    finally:
        server.stop()

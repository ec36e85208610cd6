"""A private 3-node MariaDB Galera cluster (tests/support/galera.py), started once per session,
and only when a test that uses it is selected.

It is heavy (three ``mariadbd``, two SSTs by rsync), so it runs on the MariaDB pass of CI only
(``KMS_TEST_MYSQL_URL`` set), like tests/test_db_outage.py. There, a missing MariaDB, Galera
library or rsync skips the tests, and ``KMS_REQUIRE_MYSQL`` (the ``mysql`` marker) or
``KMS_REQUIRE_GALERA=1`` turns that skip into a failure.
"""
from __future__ import annotations

import os

import pytest

from tests.support.galera import GaleraCluster

MYSQL_URL = os.environ.get("KMS_TEST_MYSQL_URL", "")
#: The database the smoke tests make their tables in (created once; it replicates).
SMOKE_DATABASE = "kms_galera_smoke"


@pytest.fixture(scope="session")
def galera_cluster():
    if not MYSQL_URL:
        pytest.skip("the Galera tests start a private 3-node MariaDB Galera cluster; they run on the "
                    "MariaDB pass (set KMS_TEST_MYSQL_URL)")
    cluster = GaleraCluster.create(n=3, databases=(SMOKE_DATABASE,))
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(scope="session")
def galera_database(galera_cluster) -> str:
    """The name of the database the smoke tests make their tables in (on every node)."""
    return SMOKE_DATABASE


@pytest.fixture()
def galera(galera_cluster):
    """The shared cluster, whole (3 nodes, all Synced) at the start of each test: a node that a
    failed test left down is started again first, so one failure does not spread to the next."""
    _restore(galera_cluster)
    return galera_cluster


def _restore(cluster: GaleraCluster) -> None:
    for node in cluster.nodes:
        if not node.running:
            cluster.start_node(node.index)
    cluster.wait_cluster_size(len(cluster.nodes), timeout=60)

"""``GET /metrics``: Prometheus text from a real server with two gunicorn workers.

Values are read back with prometheus_client's own parser and compared with the calls made: a
counter that did not move, a worker whose counts were lost, or a label carrying what it must not
(names, keys, arbitrary command strings) fails here.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.client import Client
from tests.support.kmsrig import wait_until
from tests.support.server import ServerProcess
from tests.support.tenants import new_account, unique

pytestmark = pytest.mark.slow

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
#: Every label name the exporter may use; their values are commands, codes, uuids or numbers.
ALLOWED_LABELS = {"command", "errorcode", "hsmprofileid", "operation", "kmskeyid", "version", "le"}


def scrape(server: ServerProcess) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}; a fresh connection each time, so that
    successive scrapes are served by either worker."""
    reply = requests.get(server.base_url + "/metrics", timeout=30, headers={"Connection": "close"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):  # noqa: ANN001, ANN201
    return wait_until(predicate, timeout=timeout, interval=0.2, what=what)


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory) -> Path:
    """Named by the operator (PROMETHEUS_MULTIPROC_DIR), so the test can see the workers' files;
    a stale file of an earlier run is there and must be removed at start."""
    path = tmp_path_factory.mktemp("prom")
    (path / "counter_1.db").write_bytes(b"stale values of an earlier run")
    return path


@pytest.fixture(scope="module")
def served(env_factory, metrics_dir):
    kms = env_factory("metrics", KMS_HSM_PROBE_INTERVAL_SEC="1", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    server = ServerProcess(kms, workers=2).start()
    keys = kms.admin_keys()
    yield server, Client(server.url, keys["apikey"], keys["secretkey"])
    server.stop()


def fresh(client: Client) -> Client:
    """The same caller on a new connection per call (``Connection: close``), so calls spread
    over both workers instead of sticking to the one a keep-alive connection reached."""
    http = requests.Session()
    http.headers["Connection"] = "close"
    return Client(client.url, client.apikey, client.secret, session=http)


def test_stale_files_are_removed_at_start(served, metrics_dir):
    assert not (metrics_dir / "counter_1.db").exists()


def test_successful_calls_are_counted_by_command(served):
    server, admin = served
    before = scrape(server)
    for _ in range(3):
        admin.ok("listZones")
    after = scrape(server)
    assert value(after, "kms_api_requests_total", command="listZones", errorcode="0") - \
        value(before, "kms_api_requests_total", command="listZones", errorcode="0") == 3
    assert value(after, "kms_api_request_duration_seconds_count", command="listZones") - \
        value(before, "kms_api_request_duration_seconds_count", command="listZones") == 3
    assert value(after, "kms_api_request_duration_seconds_sum", command="listZones") > \
        value(before, "kms_api_request_duration_seconds_sum", command="listZones")


def test_errors_are_counted_under_their_code(served):
    server, admin = served
    before = scrape(server)
    admin.error("listZones", 431, id="not-a-uuid")
    Client(server.url, admin.apikey, "wrong-secret").error("listZones", 401)
    admin.error("noSuchCommandXyz", 401)  # signed calls of unknown commands are refused as upstream does
    after = scrape(server)
    for command, code in (("listZones", "431"), ("listZones", "401"), ("unknown", "401")):
        assert value(after, "kms_api_requests_total", command=command, errorcode=code) - \
            value(before, "kms_api_requests_total", command=command, errorcode=code) == 1, (command, code)
    commands = {dict(labels).get("command") for _, labels in after}
    assert "noSuchCommandXyz" not in commands  # arbitrary strings never become label values


def test_two_workers_are_summed(served, metrics_dir):
    """Calls spread over both workers (their own value files); every scrape, whichever worker
    serves it, reports the total."""
    server, admin = served
    caller = fresh(admin)
    before = value(scrape(server), "kms_api_requests_total", command="listCapabilities", errorcode="0")
    made = 0

    def both_workers_counted() -> bool:
        nonlocal made
        for _ in range(10):
            caller.ok("listCapabilities")
            made += 1
        return len(list(metrics_dir.glob("counter_*.db"))) >= 2

    wait_for(both_workers_counted, timeout=60, what="counts of two worker processes")
    for _ in range(6):
        assert value(scrape(server), "kms_api_requests_total", command="listCapabilities",
                     errorcode="0") - before == made


def test_provider_operations_and_reachability(served):
    server, admin = served
    profile = admin.ok("listHSMProfiles", name="HSM Database Provider")["hsmprofile"][0]["id"]
    zone = admin.ok("listZones")["zone"][0]["id"]
    before = scrape(server)
    admin.ok("createKMSKey", name=unique("key"), zoneid=zone, hsmprofileid=profile)
    after = scrape(server)
    assert value(after, "kms_provider_operation_duration_seconds_count", hsmprofileid=profile,
                 operation="create_kek") - value(before, "kms_provider_operation_duration_seconds_count",
                                                 hsmprofileid=profile, operation="create_kek") >= 1
    assert (("kms_provider_operation_errors_total", (("hsmprofileid", profile), ("operation", "create_kek"))) in after)
    # The background probe (every second here) marks the profile reachable on the worker scraped.
    wait_for(lambda: value(scrape(server), "kms_hsm_profile_reachable", hsmprofileid=profile) == 1,
             what="the database profile reported reachable")


def test_scrape_time_gauges(served):
    server, admin = served
    samples = scrape(server)
    assert value(samples, "kms_database_up") == 1
    for name in ("kms_async_jobs_queued", "kms_async_jobs_running", "kms_async_job_oldest_queued_age_seconds"):
        assert (name, ()) in samples, name
        assert samples[(name, ())] >= 0


def test_labels_carry_no_tenant_data(served):
    server, admin = served
    account, user = new_account(admin)
    user.ok("listZones")
    reply = requests.get(server.base_url + "/metrics", timeout=30)
    text = reply.text
    for secret in (admin.apikey, admin.secret, user.apikey, user.secret, account["name"]):
        assert secret not in text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert set(sample.labels) <= ALLOWED_LABELS, sample
            for key in ("hsmprofileid", "kmskeyid"):
                if key in sample.labels:
                    assert UUID.match(sample.labels[key]), sample


def test_list_hsm_profiles_shows_reachability_to_root_admins_only(served):
    server, admin = served

    def reachable() -> bool:
        profiles = admin.ok("listHSMProfiles", name="HSM Database Provider")["hsmprofile"]
        return profiles[0].get("reachable") is True

    wait_for(reachable, what="listHSMProfiles to show the database profile reachable")
    _, user = new_account(admin)
    seen = user.ok("listHSMProfiles", listall="true")["hsmprofile"]
    assert seen and all("reachable" not in p for p in seen)


def test_rewrap_backlog_after_rotation(served):
    """Two wrapped keys (metadata-only volumes) under version 1; after a rotation, with the
    rewrap worker paused, both are the backlog of version 1; once it runs, none is."""
    server, admin = served
    profile = admin.ok("listHSMProfiles", name="HSM Database Provider")["hsmprofile"][0]["id"]
    zone = admin.ok("listZones")["zone"][0]["id"]
    admin.ok("updateConfiguration", name="storage.volume.images", value="false")
    admin.ok("updateConfiguration", name="kms.rewrap.interval.ms", value="0")
    offering = admin.ok("createDiskOffering", name=unique("enc"), disksize=1, encrypt="true")["diskoffering"]["id"]
    key = admin.ok("createKMSKey", name=unique("key"), zoneid=zone, hsmprofileid=profile)["kmskey"]["id"]
    for _ in range(2):
        admin.run_async("createVolume", name=unique("vol"), zoneid=zone, diskofferingid=offering, kmskeyid=key)
    assert value(scrape(server), "kms_rewrap_backlog", kmskeyid=key, version="1") == 0
    job = admin.ok("rotateKMSKey", id=key)
    assert admin.wait_job(job["jobid"])["jobstatus"] == 1
    assert value(scrape(server), "kms_rewrap_backlog", kmskeyid=key, version="1") == 2
    admin.ok("updateConfiguration", name="kms.rewrap.interval.ms", value="200")
    wait_for(lambda: ("kms_rewrap_backlog", (("kmskeyid", key), ("version", "1"))) not in scrape(server),
             timeout=60, what="the rewrap worker to drain version 1")
    # The drain is bulk work: counted per chunk, as keys and the seconds they took, per operation.
    samples = scrape(server)
    for operation in ("unwrap", "wrap"):
        assert value(samples, "kms_provider_bulk_keys_total", hsmprofileid=profile, operation=operation) == 2
        assert value(samples, "kms_provider_bulk_seconds_total", hsmprofileid=profile, operation=operation) > 0

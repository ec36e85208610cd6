"""The shortest path through the product: init, serve, sign, list."""


def test_signed_list_zones(admin):
    zones = admin.ok("listZones", name="zone1")
    assert zones["count"] == 1
    assert zones["zone"][0]["name"] == "zone1"
    assert zones["zone"][0]["allocationstate"] == "Enabled"


def test_db_init_is_idempotent(kms_env):
    out = kms_env.init()
    assert "database ready" in out
    assert "created" not in out  # nothing new on the second run

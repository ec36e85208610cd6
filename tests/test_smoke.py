"""The shortest path through the product: init, serve, sign, list."""


def test_signed_list_zones(admin):
    zones = admin.ok("listZones", name="zone1")
    assert zones["count"] == 1
    assert zones["zone"][0]["name"] == "zone1"
    assert zones["zone"][0]["allocationstate"] == "Enabled"


def test_db_init_is_idempotent(kms_env):
    out = kms_env.init()
    assert "database ready" in out
    # Nothing built-in is created twice (other tests may add zones, whose storage init then adds).
    for built_in in ("created role", "created domain", "created account", "created user", "created zone",
                     "admin password", "created HSM profile"):
        assert built_in not in out, out

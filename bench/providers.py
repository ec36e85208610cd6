"""Wrap/unwrap throughput of the KMS providers against raw python-pkcs11 on SoftHSM2.

    python bench/providers.py [--seconds N] [--threads T]

Everything is private to the run: a SoftHSM2 configuration and token in a temporary
directory (``SOFTHSM2_CONF`` is set before the PKCS#11 library is loaded), and a SQLite
database plus master key for the database provider. Five rows are measured, each for
``--seconds`` per operation on a 32-byte DEK:

(a) raw python-pkcs11 AES-GCM ``encrypt``/``decrypt`` with the same token KEK, behind a
    process lock (what any thread-safe caller must do; see hsm-and-anchors.md §5);
(b) the pkcs11 provider, direct calls;
(c) the pkcs11 provider through ``retry.call`` with each attempt handed off to a worker
    thread (the mode key management and third-party providers use);
(d) the database provider;
(e) the pkcs11 provider through ``KmsRuntime.call(..., hot=True)`` with the live policy read
    from the database: the path the KMS service's wrap and unwrap take (retries, and the
    ``kms.operation.timeout.sec`` deadline, included).

The cases run in alternating 0.1 s slices (``--seconds`` in total per case and operation), so
that drifting load from elsewhere on the machine weighs on all of them alike.

The target is (e) >= 80 % of (a), for wrap and for unwrap. The script prints PASS or FAIL
and exits 0 either way: it measures, it does not gate.
"""
from __future__ import annotations

import argparse
import contextvars
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

MODULE = os.environ.get("KMS_TEST_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
TOKEN_LABEL = "kms-bench"
USER_PIN = "1234"
SO_PIN = "5678"
KEK_LABEL = "bench-kek"
TARGET = 0.80


def setup_softhsm(root: Path) -> None:
    tokens = root / "tokens"
    tokens.mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
                    "slots.removable = false\n")
    # Before anything loads the library: SoftHSM2 reads its configuration in C_Initialize.
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL, "--pin", USER_PIN,
                    "--so-pin", SO_PIN], check=True, capture_output=True)


#: Which of the measuring threads runs here (0: the first, or the main thread): per-thread state
#: of a case (the service case's session) then outlives the threads of one slice.
_slot = threading.local()


def measure(fn: Callable[[], object], seconds: float, threads: int = 1) -> tuple[int, float]:
    """(operations, elapsed seconds) of ``fn`` called in a tight loop by ``threads`` threads."""
    stop = time.perf_counter() + seconds
    counts = [0] * threads
    errors: list[BaseException] = []

    def loop(i: int) -> None:
        _slot.index = i
        n = 0
        try:
            while True:
                for _ in range(32):
                    fn()
                n += 32
                if time.perf_counter() >= stop:
                    break
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        counts[i] = n

    start = time.perf_counter()
    if threads == 1:
        loop(0)
    else:
        workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"benchmark loop failed: {errors[0]!r}")
    return sum(counts), elapsed


def interleaved(cases: list[Callable[[], object]], seconds: float, threads: int,
                slice_sec: float = 0.1) -> tuple[list[float], list[list[float]]]:
    """Ops/s of each case over the whole run, and per round, measured in alternating short
    slices so that load from elsewhere on the machine (which drifts over seconds) weighs on
    every case alike."""
    for fn in cases:  # warm up: sessions, handle caches
        for _ in range(200):
            fn()
    rounds = max(1, round(seconds / slice_sec))
    ops = [0] * len(cases)
    spent = [0.0] * len(cases)
    per_round: list[list[float]] = [[] for _ in cases]
    for r in range(rounds):
        order = list(range(len(cases)))
        random.Random(r).shuffle(order)
        for i in order:
            n, t = measure(cases[i], seconds / rounds, threads)
            ops[i] += n
            spent[i] += t
            per_round[i].append(n / t)
    return [n / t for n, t in zip(ops, spent)], per_round


def ratio(per_round: list[list[float]], case: int) -> float:
    """Median over rounds of case/raw: adjacent slices share the machine's load of the moment."""
    return statistics.median(c / r for c, r in zip(per_round[case], per_round[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per operation (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="calling threads (default 1)")
    args = parser.parse_args(argv)

    if not Path(MODULE).exists() or shutil.which("softhsm2-util") is None:
        print(f"SoftHSM2 is not installed ({MODULE}, softhsm2-util)", file=sys.stderr)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="kms-bench-"))
    try:
        setup_softhsm(tmp / "softhsm")
        return run(tmp, args.seconds, args.threads)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path, seconds: float, threads: int) -> int:
    import pkcs11  # noqa: PLC0415 - after SOFTHSM2_CONF is set

    from cloudstack_kms.db import Database  # noqa: PLC0415
    from cloudstack_kms.providers import retry  # noqa: PLC0415
    from cloudstack_kms.providers.base import ProfileConfig, WrapContext  # noqa: PLC0415
    from cloudstack_kms.providers.context import ProviderContext  # noqa: PLC0415
    from cloudstack_kms.providers.database import DatabaseProvider  # noqa: PLC0415
    from cloudstack_kms.providers.pkcs11 import Pkcs11Provider  # noqa: PLC0415
    from cloudstack_kms.security.masterkey import MasterKey  # noqa: PLC0415
    from cloudstack_kms.services.kms.runtime import KmsRuntime  # noqa: PLC0415

    db = Database(f"sqlite:///{tmp / 'kms.db'}")
    db.create_schema()
    context = ProviderContext(db=db, master_key=MasterKey.create(tmp / "master.key"))
    dek = os.urandom(32)
    ctx = WrapContext(wrapped_key_uuid="6f1f4f5e-0b7e-4a51-9a53-5c0d0c8f2b11",
                      kms_key_uuid="0c2b7f4e-7d55-4d8c-8f0e-3f8f1d3f7a21")

    # The provider logs in first (as in the server); the raw session then shares that login.
    hsm = Pkcs11Provider(context)
    profile = ProfileConfig(id=1, uuid="bench-profile", name="bench", protocol="pkcs11", revision="r1",
                            details={"library": MODULE, "token_label": TOKEN_LABEL, "pin": USER_PIN})
    hsm.create_kek(profile, KEK_LABEL, 256)
    policy = retry.RetryPolicy(retries=3, delay_ms=10, timeout_sec=30.0, mode=retry.Mode.HANDOFF)

    lib = pkcs11.lib(MODULE)
    raw_lock = threading.Lock()
    with raw_lock:
        raw_session = lib.get_token(token_label=TOKEN_LABEL).open(rw=True)
        raw_kek = raw_session.get_key(object_class=pkcs11.ObjectClass.SECRET_KEY, label=KEK_LABEL)
    aad = ctx.aad()
    gcm = pkcs11.Mechanism.AES_GCM

    def raw_wrap() -> bytes:
        nonce = os.urandom(12)
        with raw_lock:
            return nonce + raw_kek.encrypt(dek, mechanism=gcm, mechanism_param=pkcs11.GCMParams(nonce, aad, 128))

    raw_blob = raw_wrap()

    def raw_unwrap() -> bytes:
        with raw_lock:
            return raw_kek.decrypt(raw_blob[12:], mechanism=gcm,
                                   mechanism_param=pkcs11.GCMParams(raw_blob[:12], aad, 128))

    assert raw_unwrap() == dek
    hsm_blob = hsm.wrap(profile, KEK_LABEL, dek, ctx)
    assert hsm.unwrap(profile, KEK_LABEL, hsm_blob, ctx) == dek

    database = DatabaseProvider(context)
    db_profile = ProfileConfig(id=2, uuid="bench-db", name="database", protocol="database", revision="r1")
    database.create_kek(db_profile, KEK_LABEL, 256)
    db_blob = database.wrap(db_profile, KEK_LABEL, dek, ctx)
    assert database.unwrap(db_profile, KEK_LABEL, db_blob, ctx) == dek

    runtime = KmsRuntime.create(context)
    # The services call the runtime inside a transaction: here a read-only one per measuring
    # thread (as each request has its own; the runtime reads the settings with it once a second).
    # Each is entered, and begun, in a context of its own: it must not become the ambient
    # transaction of the other cases (the database provider would join it), and it must begin as
    # read-only (deferred on SQLite, not holding the write lock). runtime.call takes the session
    # as an argument, so calls need not enter that context.
    sessions: dict[int, tuple[object, contextvars.Context, object]] = {}

    def service_session() -> object:
        index = getattr(_slot, "index", 0)
        entry = sessions.get(index)
        if entry is None:
            own, transaction = contextvars.copy_context(), db.transaction(readonly=True)
            session = own.run(transaction.__enter__)
            own.run(session.connection)  # BEGIN now, with the read-only flag of its context
            entry = sessions[index] = (session, own, transaction)
        return entry[0]

    def service(operation: str, fn: Callable[[], object]) -> Callable[[], object]:
        return lambda: runtime.call(service_session(), operation, fn, hsm, hot=True)

    cases = [
        ("(a) raw python-pkcs11 GCM + lock", raw_wrap, raw_unwrap),
        ("(b) pkcs11 provider", lambda: hsm.wrap(profile, KEK_LABEL, dek, ctx),
         lambda: hsm.unwrap(profile, KEK_LABEL, hsm_blob, ctx)),
        ("(c) pkcs11 provider + retry.call hand-off",
         lambda: retry.call(policy, "wrap", lambda: hsm.wrap(profile, KEK_LABEL, dek, ctx)),
         lambda: retry.call(policy, "unwrap", lambda: hsm.unwrap(profile, KEK_LABEL, hsm_blob, ctx))),
        ("(d) database provider", lambda: database.wrap(db_profile, KEK_LABEL, dek, ctx),
         lambda: database.unwrap(db_profile, KEK_LABEL, db_blob, ctx)),
        ("(e) pkcs11 via KmsRuntime.call (service)",
         service("wrap", lambda: hsm.wrap(profile, KEK_LABEL, dek, ctx)),
         service("unwrap", lambda: hsm.unwrap(profile, KEK_LABEL, hsm_blob, ctx))),
    ]
    SERVICE = len(cases) - 1
    mode = runtime.policy_for(service_session(), hsm, hot=True).mode
    print(f"SoftHSM2 via {MODULE}; {seconds:g} s per operation, {threads} thread(s), 32-byte DEK, "
          f"mechanism {'GCM' if hsm._connections[1].mechanism == 1 else 'KWP'}; service path mode: {mode.value}")
    wraps, wrap_rounds = interleaved([c[1] for c in cases], seconds, threads)
    unwraps, unwrap_rounds = interleaved([c[2] for c in cases], seconds, threads)

    print()
    print(f"{'case':<42} {'wrap ops/s':>11} {'unwrap ops/s':>13} {'wrap/raw':>9} {'unwrap/raw':>11}")
    print("-" * 90)
    for i, (name, _, _) in enumerate(cases):
        print(f"{name:<42} {wraps[i]:>11,.0f} {unwraps[i]:>13,.0f} {ratio(wrap_rounds, i):>8.0%} "
              f"{ratio(unwrap_rounds, i):>10.0%}")
    print("(ops/s over the whole run; ratios are medians of per-slice ratios against (a))")
    print()
    worst = min(ratio(wrap_rounds, SERVICE), ratio(unwrap_rounds, SERVICE))
    verdict = "PASS" if worst >= TARGET else "FAIL"
    print(f"{verdict}: pkcs11 provider through the service path (KmsRuntime.call) reaches {worst:.0%} of raw "
          f"python-pkcs11, the worse of wrap and unwrap (target >= {TARGET:.0%})")

    for _, own, transaction in sessions.values():
        own.run(transaction.__exit__, None, None, None)
    hsm.close()
    with raw_lock:
        raw_session.close()
    db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())

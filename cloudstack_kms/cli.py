"""The ``cloudstack-kms`` command: ``db init``, ``user keys``, ``user passwd``, ``serve``, ``quickstart``, ``master-key``."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .config import Settings, default_data_dir

#: The longest request line served (gunicorn refuses longer ones with 400 before any code runs).
MAX_REQUEST_LINE = 8190


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cloudstack-kms", description=__doc__)
    parser.add_argument("--db-url", default=os.environ.get("KMS_DB_URL"),
                        help="SQLAlchemy URL (default: SQLite in the data directory; MySQL: mysql+mysqldb://...)")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $KMS_DATA_DIR or "
                        "~/.local/share/cloudstack-kms)")
    parser.add_argument("--master-key-file", default=None,
                        help="master key file (default: $KMS_MASTER_KEY_FILE or <data-dir>/master.key)")
    sub = parser.add_subparsers(dest="area", required=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    db.add_parser("init", help="create or upgrade the schema and seed the built-in rows (idempotent)")

    user = sub.add_parser("user", help="users").add_subparsers(dest="action", required=True)
    keys = user.add_parser("keys", help="print the user's API keys as one JSON line, registering them if needed")
    keys.add_argument("username")
    keys.add_argument("--domain", default="/", help="domain path, e.g. /child/ (default ROOT)")
    # No --password: an argument is visible to every local user (ps, /proc) and lands in shell
    # history. The password is asked twice on a terminal, else read from standard input.
    passwd = user.add_parser("passwd", help="set a user's password (prompted on a terminal, else the first "
                             "line of standard input)")
    passwd.add_argument("username")
    passwd.add_argument("--domain", default="/")

    for name, help_text in (("serve", "serve the API"), ("quickstart", "init, print credentials, serve")):
        serve = sub.add_parser(name, help=help_text)
        serve.add_argument("--host", default="127.0.0.1")
        serve.add_argument("--port", type=int, default=8080)
        serve.add_argument("--workers", type=int, default=1, help="server processes")
        serve.add_argument("--threads", type=int, default=8, help="request threads per process")
        serve.add_argument("--ui-dir", default=None, help="a CloudStack web UI build (dist) to serve at /client/")
        serve.add_argument("--secure-cookies", action="store_true",
                           help="mark session cookies Secure (clients reach this server over HTTPS, e.g. through "
                           "a TLS-terminating proxy); also $KMS_SECURE_COOKIES=true")
        serve.add_argument("--pkcs11-library", action="append", default=None, metavar="PATH",
                           help="a PKCS#11 module HSM profiles may load (repeat for several); replaces "
                           "$KMS_PKCS11_LIBRARIES and the default (SoftHSM2's standard paths)")

    mk = sub.add_parser("master-key", help="the master key: status, rotation "
                        "(docs/operations.md, Master key rotation)").add_subparsers(dest="action", required=True)
    mk.add_parser("status", help="the keyring's key ids and how many stored values each protects, per table")
    rotate = mk.add_parser("rotate", help="a new key seals, every stored secret is sealed again with it, the old "
                           "key is retired (resumable: run it again after an interruption)")
    rotate.add_argument("--prepare", action="store_true",
                        help="only add a new key that opens but does not seal yet (several hosts: copy the file "
                        "to each, then run rotate)")
    rotate.add_argument("--keyring-copied", action="store_true",
                        help="the current keyring file is on every host running a server: retire the old key "
                        "even though servers on other hosts are up")
    rotate.add_argument("--batch-size", type=int, default=200, help="rows per transaction (default 200)")
    rotate.add_argument("--settle-seconds", type=float, default=30.0,
                        help="wait between the last two scans before retiring, for transactions that sealed "
                        "with the old key just before the switch (default 30)")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    return Settings(db_url=args.db_url or "", data_dir=data_dir,
                    master_key_file=Path(args.master_key_file) if args.master_key_file else None)


def db_init(settings: Settings, out=sys.stdout) -> None:
    from .db import Database
    from .security.masterkey import MasterKey
    from .services import bootstrap
    import cloudstack_kms.extensions  # noqa: F401  (registers the seeds of every subsystem)

    master_key_existed = settings.master_key_file.exists()
    MasterKey.load_or_create(settings.master_key_file)
    if not master_key_existed:
        print(f"created master key {settings.master_key_file} (mode 0600): back it up, "
              "the secrets in the database cannot be read without it", file=out)
    database = Database(settings.db_url)
    try:
        steps = database.create_schema()
        with database.transaction() as session:
            report = bootstrap.seed(session, data_dir=settings.data_dir)
    finally:
        database.dispose()
    for step in steps:
        print(f"applied {step}", file=out)
    for item in report.created:
        print(f"created {item}", file=out)
    if report.admin_password:
        print(f"admin password (shown once): {report.admin_password}", file=out)
    print("database ready", file=out)


def user_keys(settings: Settings, username: str, domain: str) -> dict[str, str]:
    from .db import Database
    from .security.masterkey import MasterKey
    from .services import users

    master_key = MasterKey.load(settings.master_key_file)
    database = Database(settings.db_url)
    try:
        with database.transaction() as session:
            user = users.find_user(session, username, _domain_path(domain))
            if user is None:
                raise SystemExit(f"no user {username} in domain {domain}")
            api_key, secret = users.get_keys(master_key, user)
            if api_key is None:
                api_key, secret = users.register_keys(session, master_key, user)
    finally:
        database.dispose()
    return {"apikey": api_key, "secretkey": secret}


def user_passwd(settings: Settings, username: str, password: str, domain: str) -> None:
    from .db import Database
    from .services import users

    database = Database(settings.db_url)
    try:
        with database.transaction() as session:
            user = users.find_user(session, username, _domain_path(domain))
            if user is None:
                raise SystemExit(f"no user {username} in domain {domain}")
            users.set_password(user, password)
    finally:
        database.dispose()


def read_new_password() -> str:
    """The new password: asked twice on a terminal, else the first line of standard input."""
    import getpass
    if sys.stdin.isatty():
        password = getpass.getpass("New password: ")
        if getpass.getpass("Retype new password: ") != password:
            raise SystemExit("passwords do not match")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise SystemExit("empty password")
    return password


def _domain_path(domain: str) -> str:
    path = domain if domain.startswith("/") else "/" + domain
    return path if path.endswith("/") else path + "/"


def usage_text(host: str, port: int, keys: dict[str, str]) -> str:
    url = f"http://{host}:{port}/client/api"
    return f"""
cloudstack-kms API: {url}
  apikey:    {keys['apikey']}
  secretkey: {keys['secretkey']}

CloudMonkey (cmk):
  cmk set url {url}
  cmk set apikey {keys['apikey']}
  cmk set secretkey {keys['secretkey']}
  cmk sync && cmk list zones

cs (pip install cs):
  export CLOUDSTACK_ENDPOINT={url} CLOUDSTACK_KEY={keys['apikey']} CLOUDSTACK_SECRET={keys['secretkey']}
  cs listZones
"""


def serve(settings: Settings, host: str, port: int, workers: int, threads: int, ui_dir: str | None) -> None:
    from gunicorn.app.base import BaseApplication

    from . import create_app, worker_balance

    metrics_dir = _metrics_directory()
    # Made before the workers fork, so that they all share it. Slots to spare for workers added
    # with SIGTTIN or started while a stopping one is still finishing.
    board = worker_balance.ConnectionBoard(2 * workers + 4) if workers > 1 else None

    def worker_gone(server, worker) -> None:  # noqa: ANN001 - gunicorn's child_exit hook
        _forget_worker_metrics(server, worker)
        if board is not None:
            board.release(worker.pid)

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            # Clients put everything in the query string, so allow gunicorn's largest request line
            # (8190 bytes), not an unbounded one; longer requests must be POSTed as a form.
            self.cfg.set("limit_request_line", MAX_REQUEST_LINE)
            self.cfg.set("accesslog", "-")
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("timeout", 120)
            # Clients reuse keep-alive connections; gunicorn's 2 s default closes them under clients
            # that pause briefly, which they see as "Remote end closed connection without response".
            self.cfg.set("keepalive", 75)
            self.cfg.set("worker_exit", _stop_background)
            self.cfg.set("child_exit", worker_gone)
            if board is not None:
                self.cfg.set("post_fork", lambda _server, worker: worker_balance.install(board, worker))
                self.cfg.set("pre_request", worker_balance.before_request)
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn >= 25 opens a control socket at one fixed per-user path, which every
                # server on the host would share (and unlink on exit): not wanted here.
                self.cfg.set("control_socket_disable", True)

        def load(self):  # noqa: ANN202 - each worker process builds its own app and job workers
            return create_app(settings, ui_dir=ui_dir)

    try:
        Server().run()
    finally:
        metrics_dir.cleanup()


class _MetricsDirectory:
    """Where gunicorn's workers keep their metric values (``PROMETHEUS_MULTIPROC_DIR``), set
    before they fork so that a scrape served by any worker sums them all.

    A private new directory per server unless the operator names one in the environment; a
    named one is emptied on start (files of an earlier run would be added to this one's counts)
    and kept, a private one removed at exit.
    """

    def __init__(self, path: Path, private: bool) -> None:
        self.path, self.private = path, private

    def cleanup(self) -> None:
        if self.private:
            import shutil
            shutil.rmtree(self.path, ignore_errors=True)


def _metrics_directory() -> _MetricsDirectory:
    import tempfile
    named = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if named:
        path = Path(named)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return _MetricsDirectory(path, private=False)
    _remove_orphaned_metrics_directories(Path(tempfile.gettempdir()))
    path = Path(tempfile.mkdtemp(prefix=f"{_METRICS_PREFIX}{os.getpid()}-"))  # mode 0700
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return _MetricsDirectory(path, private=True)


_METRICS_PREFIX = "cloudstack-kms-metrics-"


def _remove_orphaned_metrics_directories(tmp: Path) -> None:
    """Private directories of servers that did not get to remove theirs (killed with -9): the
    name holds the server's pid, and a directory whose server is gone is removed."""
    import shutil
    for path in tmp.glob(f"{_METRICS_PREFIX}*-*"):
        pid = path.name[len(_METRICS_PREFIX):].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass  # alive, another user's


def _forget_worker_metrics(_server, worker) -> None:  # noqa: ANN001 - gunicorn's child_exit hook
    """A worker is gone (stopped, crashed or replaced): drop its live-gauge files. Its counters
    and histograms stay, so totals do not go backwards when a worker is replaced."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def master_key_command(settings: Settings, args: argparse.Namespace) -> None:
    """``master-key status`` and ``master-key rotate``; a refusal exits with its reason (status 1)."""
    from .db import Database
    from .security import keyring
    from .services import master_key_rotation as rotation

    path = settings.master_key_file

    def report(line: str) -> None:
        print(line, flush=True)  # flushed: progress of a long pass, and what an interrupted run did

    try:
        if args.action == "rotate" and args.prepare:
            rotation.prepare(path, report)
            return
        database = Database(settings.db_url)
        try:
            if args.action == "status":
                for line in rotation.format_status(path, rotation.status(database), keyring.read(path)):
                    report(line)
            else:
                rotation.rotate(database, path, batch=max(1, args.batch_size), settle_sec=max(0.0, args.settle_seconds),
                                keyring_copied=args.keyring_copied, report=report)
        finally:
            database.dispose()
    except (rotation.RotationError, keyring.KeyringError) as exc:
        raise SystemExit(f"master-key {args.action}: {exc}") from None


def _stop_background(_server, worker) -> None:  # noqa: ANN001 - gunicorn's worker_exit hook
    """On a graceful stop, end the job threads and mark this server Down in ``mshost``."""
    app = getattr(worker, "wsgi", None)
    state = getattr(app, "extensions", {}).get("cloudstack_kms") if app is not None else None
    if state is not None and state.worker is not None:
        state.worker.stop()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .logging_setup import install_redaction
    install_redaction()
    settings = settings_from(args)
    if getattr(args, "secure_cookies", False):
        settings.secure_cookies = True
    if getattr(args, "pkcs11_library", None):
        # The providers read the allow-list from the environment, which gunicorn's workers inherit.
        os.environ["KMS_PKCS11_LIBRARIES"] = os.pathsep.join(args.pkcs11_library)
    if args.area == "db":
        db_init(settings)
    elif args.area == "user" and args.action == "keys":
        print(json.dumps(user_keys(settings, args.username, args.domain)))
    elif args.area == "user" and args.action == "passwd":
        user_passwd(settings, args.username, read_new_password(), args.domain)
        print("password updated")
    elif args.area == "serve":
        serve(settings, args.host, args.port, args.workers, args.threads, args.ui_dir)
    elif args.area == "master-key":
        master_key_command(settings, args)
    elif args.area == "quickstart":
        db_init(settings)
        print(usage_text(args.host, args.port, user_keys(settings, "admin", "/")))
        sys.stdout.flush()
        serve(settings, args.host, args.port, args.workers, args.threads, args.ui_dir)


if __name__ == "__main__":
    main()

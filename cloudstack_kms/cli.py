"""The ``cloudstack-kms`` command: ``db init``, ``user keys``, ``user passwd``, ``serve``, ``quickstart``."""
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

    from . import create_app

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
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn >= 25 opens a control socket at one fixed per-user path, which every
                # server on the host would share (and unlink on exit): not wanted here.
                self.cfg.set("control_socket_disable", True)

        def load(self):  # noqa: ANN202 - each worker process builds its own app and job workers
            return create_app(settings, ui_dir=ui_dir)

    Server().run()


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
    elif args.area == "quickstart":
        db_init(settings)
        print(usage_text(args.host, args.port, user_keys(settings, "admin", "/")))
        sys.stdout.flush()
        serve(settings, args.host, args.port, args.workers, args.threads, args.ui_dir)


if __name__ == "__main__":
    main()

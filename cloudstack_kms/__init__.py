"""cloudstack-kms: the Key Management System of Apache CloudStack 4.23 behind a CloudStack API.

:func:`create_app` is the application factory; everything else hangs off it.
"""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, send_from_directory

from .config import Settings

__version__ = "0.1.0"


def create_app(settings: Settings | None = None, ui_dir: str | Path | None = None) -> Flask:
    """Build the WSGI app. Background workers start only if ``settings.start_background``."""
    from . import extensions  # noqa: F401
    from .api.command import Registry
    from .api.endpoint import bp, register_error_handlers
    from .app_state import AppState
    from .db import Database
    from .jobs.worker import JobWorker
    from .logging_setup import install_redaction
    from .observability import routes as observability
    from .security.masterkey import MasterKey

    settings = settings or Settings()
    install_redaction()
    app = Flask(__name__)
    state = AppState(settings=settings, db=Database(settings.db_url),
                     master_key=MasterKey.load(settings.master_key_file), registry=Registry.discover())
    app.extensions["cloudstack_kms"] = state
    app.register_blueprint(bp)
    app.register_blueprint(observability.bp)  # /metrics and /health
    register_error_handlers(app)
    if ui_dir:
        _serve_ui(app, Path(ui_dir))
    if settings.start_background:
        from .services.kms.rewrap import RewrapWorker
        state.worker = JobWorker(state, threads=settings.job_threads)
        state.worker.start()
        state.services["rewrap"] = RewrapWorker(state)
        state.services["rewrap"].start()
        from .observability.hsm_probe import HsmProbe
        state.services["hsm_probe"] = HsmProbe(state)
        state.services["hsm_probe"].start()
    return app


def _serve_ui(app: Flask, ui_dir: Path) -> None:
    """Serve a CloudStack web UI build at ``/client/`` so it shares the API's origin and cookies."""

    @app.route("/client/", defaults={"path": "index.html"})
    @app.route("/client/<path:path>")
    def ui(path: str):  # noqa: ANN202
        target = ui_dir / path
        if not target.is_file():
            path = "index.html"
        return send_from_directory(ui_dir, path)

    @app.route("/")
    def root():  # noqa: ANN202
        from flask import redirect
        return redirect("/client/")


logging.getLogger(__name__).addHandler(logging.NullHandler())

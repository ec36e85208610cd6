"""The floor of ``bench/api.py``: a bare Flask app served exactly as ``cloudstack-kms serve`` serves the KMS.

    python bench/floor_app.py [cloudstack-kms options] serve --host H --port P --workers W --threads T

It runs ``cloudstack_kms.cli.main`` itself, the same logging set-up and the same gunicorn
configuration (``gthread``, workers, threads, access log, keep-alive, timeouts, request-line
limit), with :func:`cloudstack_kms.create_app` replaced by one that returns :data:`app`: one
route at ``/client/api`` answering a small JSON body, no database, no authentication. Whatever
``serve`` changes in its gunicorn settings, the floor follows.
"""
from __future__ import annotations

import sys
from pathlib import Path

from flask import Flask, jsonify

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

app = Flask(__name__)

#: About the size of a one-zone ``listZones`` answer's envelope, without the work behind it.
BODY = {"listzonesresponse": {"count": 1, "zone": [{"id": "00000000-0000-0000-0000-000000000000",
                                                    "name": "floor", "networktype": "Advanced",
                                                    "allocationstate": "Enabled"}]}}


@app.route("/client/api", methods=["GET", "POST"])
def api():  # noqa: ANN201
    return jsonify(BODY)


def create_app(settings=None, ui_dir=None) -> Flask:  # noqa: ANN001 - same signature as the real factory
    return app


def main(argv: list[str] | None = None) -> None:
    import cloudstack_kms
    from cloudstack_kms import cli

    # ``serve`` looks the factory up in the package when it is called (``from . import
    # create_app``), so replacing the package attribute first is enough.
    cloudstack_kms.create_app = create_app
    cli.main(argv)


if __name__ == "__main__":
    main()

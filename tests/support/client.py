"""A small CloudStack API client for tests, written independently of the server's code.

It signs the way CloudStack's Java server expects (URLEncoder, ``+`` as ``%20``, sorted,
lower-cased, HMAC-SHA1), so a server-side signing bug cannot hide behind shared code.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    text: str

    def inner(self) -> dict[str, Any]:
        """The object under the single response name."""
        assert isinstance(self.body, dict) and len(self.body) == 1, self.text
        return next(iter(self.body.values()))


def sign(params: dict[str, str], secret: str) -> str:
    # quote() leaves "~" raw; URLEncoder gives %7E.
    query = "&".join(f"{k}={quote(str(v), safe='.-*_').replace('~', '%7E')}"
                     for k, v in sorted(params.items())).lower()
    return base64.b64encode(hmac.new(secret.encode(), query.encode(), hashlib.sha1).digest()).decode()


class Client:
    def __init__(self, url: str, apikey: str | None = None, secret: str | None = None,
                 session: requests.Session | None = None) -> None:
        self.url = url
        self.apikey = apikey
        self.secret = secret
        self.http = session or requests.Session()
        self.sessionkey: str | None = None

    def request(self, command: str, method: str = "GET", signed: bool = True, fmt: str = "json",
                **params: Any) -> Reply:
        query: dict[str, str] = {"command": command}
        if fmt:
            query["response"] = fmt
        query.update({k: str(v) for k, v in params.items() if v is not None})
        if self.sessionkey and "sessionkey" not in query:
            query["sessionkey"] = self.sessionkey
        elif signed and self.apikey:
            query["apiKey"] = self.apikey
            query["signature"] = sign(query, self.secret or "")
        if method == "GET":
            resp = self.http.get(self.url, params=query, timeout=60)
        else:
            resp = self.http.post(self.url, data=query, timeout=60)
        try:
            body = resp.json()
        except ValueError:
            body = None
        return Reply(resp.status_code, body, dict(resp.headers), resp.text)

    def ok(self, command: str, **params: Any) -> dict[str, Any]:
        """Call and require HTTP 200; returns the inner object."""
        reply = self.request(command, **params)
        assert reply.status == 200, f"{command} -> {reply.status}: {reply.text}"
        return reply.inner()

    def error(self, command: str, code: int, **params: Any) -> dict[str, Any]:
        reply = self.request(command, **params)
        assert reply.status == code, f"{command} -> {reply.status} (wanted {code}): {reply.text}"
        inner = reply.inner()
        assert inner["errorcode"] == code
        return inner

    def wait_job(self, jobid: str, timeout: float = 60.0) -> dict[str, Any]:
        """Poll ``queryAsyncJobResult`` until the job ends; returns the whole job."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.ok("queryAsyncJobResult", jobid=jobid)
            if job["jobstatus"] != 0:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {jobid} still running after {timeout}s")
            time.sleep(0.1)

    def run_async(self, command: str, **params: Any) -> dict[str, Any]:
        """Submit an async command, wait, require success; returns ``jobresult``."""
        submitted = self.ok(command, **params)
        job = self.wait_job(submitted["jobid"])
        assert job["jobstatus"] == 1, f"{command} failed: {job}"
        return job["jobresult"]

    def login(self, username: str, password: str, domain: str = "/") -> dict[str, Any]:
        reply = self.request("login", method="POST", signed=False, username=username, password=password,
                             domain=domain)
        assert reply.status == 200, reply.text
        self.sessionkey = reply.inner()["sessionkey"]
        return reply.inner()

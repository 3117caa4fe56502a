"""Load the real `midonetclient` 5.2.0 under Python 3, unmodified.

Two facts of that library under Python 3 (it was written for Python 2):
- its modules use implicit relative imports (`from vendor_media_type import ...`): the one accepted shim is
  putting the package directory on `sys.path` before importing it (ARCHITECTURE.md);
- `auth_lib.Auth.login` calls `base64.b64encode(str)`, which raises TypeError on Python 3, and queries
  (`?tenant_id=`) go through `urllib.urlencode`, which Python 3 lacks. So we log in with the library's own
  transport (`api_lib.do_request`, the same POST /login with Basic credentials), read the `sessionId`
  cookie exactly as `Auth.login` does, and hand the token to the library's module-level token slot, which
  every later request uses. Nothing of the library is patched.

May import: nothing of ours (test kit).
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any


def _package_dir() -> Path:
    spec = importlib.util.find_spec("midonetclient")
    if spec is None or spec.origin is None:
        raise ImportError("midonetclient is not installed (it is a test dependency: pip install midonetclient)")
    return Path(spec.origin).parent


def load() -> Any:
    """The `midonetclient.api` module."""
    pkg = str(_package_dir())
    if pkg not in sys.path:
        sys.path.insert(0, pkg)
    return importlib.import_module("midonetclient.api")


def login(base_uri: str, username: str, password: str, project: str | None = None) -> Any:
    """A logged-in `MidonetApi` for `base_uri` (the token is the library's process-wide token)."""
    api = load()
    api_lib = importlib.import_module("midonetclient.api_lib")
    auth_lib = importlib.import_module("midonetclient.auth_lib")
    headers = {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}
    if project is not None:
        headers["X-Auth-Project"] = project
    resp, _ = api_lib.do_request(base_uri.rstrip("/") + "/login", "POST", body={}, headers=headers)
    session, _, _ = resp["set-cookie"].partition(";")
    _, _, token = session.partition("=")
    auth_lib._token = token  # type: ignore[attr-defined]
    return api.MidonetApi(base_uri, username, password, project_id=project)

"""API keys of the model endpoint: who may call ``/invocations``.

A key is a random token (``mlk_`` + 32 random bytes, URL-safe), shown once when it is
created; the lake keeps only its SHA-256, in ``keys/endpoint/<name>.json`` with who
created it and when, and when and by whom it was revoked. A copy of the store therefore
gives no working key; a key is high-entropy, so a plain SHA-256 is enough (no salt to
slow down guessing is needed, as it would for passwords). Every replica reads the
records with its registry poll and on ``/admin/reload``; creating and revoking are admin
calls of the endpoint (``POST /admin/keys``, ``DELETE /admin/keys/<name>``), wrapped by
``python -m include.mlops.serving.keys``. Each change is written to the audit trail
(``audit/endpoint/``) before it takes effect.

A request names its key with ``Authorization: Bearer <key>`` or ``X-Api-Key: <key>``;
the key's *name* is what capture records as the caller, never the key itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

from include.mlops.lake.audit import record_event
from include.mlops.lake.store import Lake

PREFIX = "keys/endpoint"
KEY_PREFIX = "mlk_"
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
AUDIT_SCOPE = "endpoint"


class KeyRequestError(ValueError):
    """A key request the store refuses (bad name, duplicate, unknown)."""


@dataclass(frozen=True)
class KeyRecord:
    """What the store keeps of a key (never the key).

    Attributes:
        name: Who holds it, in words (a team, a service): capture records it as the caller.
        sha256: Hex SHA-256 of the key.
        created_at: When (UTC, ISO 8601).
        created_by: Who created it.
        revoked_at: When it was revoked, or None.
        revoked_by: Who revoked it, or None.
    """

    name: str
    sha256: str
    created_at: str
    created_by: str
    revoked_at: str | None = None
    revoked_by: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, object]:
        """What ``GET /admin/keys`` shows (no hash)."""
        data = asdict(self)
        data.pop("sha256")
        return data


def new_key() -> str:
    """A fresh random key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """The SHA-256 the store keeps of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise KeyRequestError(
            f"key name {name!r} must match {NAME_RE.pattern} (lowercase, digits, _ and -)"
        )
    return name


class KeyStore:
    """The endpoint's key records in the lake.

    Args:
        lake: The lake (the model servers' identity may read and write ``keys/endpoint/``).
    """

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def records(self) -> list[KeyRecord]:
        """Every key record, active and revoked."""
        out = []
        for key in self.lake.list_files(f"{PREFIX}/", suffix=".json"):
            out.append(KeyRecord(**json.loads(self.lake.read_bytes(key))))
        return out

    def get(self, name: str) -> KeyRecord | None:
        key = f"{PREFIX}/{_check_name(name)}.json"
        if not self.lake.exists(key):
            return None
        return KeyRecord(**json.loads(self.lake.read_bytes(key)))

    def create(self, name: str, *, by: str, key: str | None = None) -> tuple[str, KeyRecord]:
        """Create a key; returns ``(key, record)`` — the key is not kept anywhere.

        Raises:
            KeyRequestError: A bad name, or an active key of that name exists (revoke it first).
        """
        current = self.get(name)
        if current is not None and current.active:
            raise KeyRequestError(f"an active key named {name!r} exists: revoke it first")
        key = key or new_key()
        record = KeyRecord(name=name, sha256=key_hash(key), created_at=_now(), created_by=by)
        record_event(self.lake, AUDIT_SCOPE, "key_created", actor=by,
                     details={"name": name, "created_at": record.created_at})  # fmt: skip
        self._write(record)
        return key, record

    def revoke(self, name: str, *, by: str, reason: str | None = None) -> KeyRecord:
        """Revoke a key (its record stays, marked revoked; requests with it get 403).

        Raises:
            KeyRequestError: No such key, or it is already revoked.
        """
        current = self.get(name)
        if current is None:
            raise KeyRequestError(f"no key named {name!r}")
        if not current.active:
            raise KeyRequestError(f"the key {name!r} was already revoked at {current.revoked_at}")
        record = replace(current, revoked_at=_now(), revoked_by=by)
        record_event(self.lake, AUDIT_SCOPE, "key_revoked", actor=by, reason=reason,
                     details={"name": name, "created_at": current.created_at})  # fmt: skip
        self._write(record)
        return record

    def bootstrap(self, keys: Mapping[str, str], *, by: str) -> list[str]:
        """Register the given ``{name: key}`` pairs whose names the store does not have.

        A name the store knows (active or revoked) is left alone: a revoked key is never
        revived by a restart. Returns the names registered.
        """
        added = []
        for name, key in keys.items():
            if self.get(name) is None:
                self.create(name, by=by, key=key)
                added.append(name)
        return added

    def _write(self, record: KeyRecord) -> None:
        self.lake.write_bytes(
            f"{PREFIX}/{record.name}.json", json.dumps(asdict(record), sort_keys=True).encode()
        )


class KeyRing:
    """The keys one replica accepts: a snapshot of the store, refreshed on reload.

    :meth:`caller` is on the request path: one SHA-256 and one dict lookup.
    """

    def __init__(self) -> None:
        self._by_hash: dict[str, KeyRecord] = {}
        self._lock = threading.Lock()
        self.loaded = False

    def load(self, records: list[KeyRecord]) -> None:
        by_hash = {r.sha256: r for r in records}
        with self._lock:
            self._by_hash = by_hash
            self.loaded = True

    def caller(self, presented: str) -> KeyRecord | None:
        """The record of a presented key (active or revoked), or None for an unknown key."""
        digest = key_hash(presented)
        record = self._by_hash.get(digest)
        # Constant-time confirmation of the match the dict lookup found.
        if record is not None and hmac.compare_digest(record.sha256, digest):
            return record
        return None


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request presents: ``Authorization: Bearer <key>`` or ``X-Api-Key``."""
    given = headers.get("x-api-key")
    if given:
        return given.strip() or None
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def bootstrap_from_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``MLOPS_ENDPOINT_BOOTSTRAP_KEYS``: JSON ``{"name": "key"}`` a replica registers at start.

    Raises:
        ValueError: Not a JSON object of names to keys.
    """
    env = os.environ if env is None else env
    raw = env.get("MLOPS_ENDPOINT_BOOTSTRAP_KEYS") or ""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValueError('MLOPS_ENDPOINT_BOOTSTRAP_KEYS is not JSON ({"name": "key"})') from None
    if not isinstance(data, dict) or not all(isinstance(v, str) and v for v in data.values()):
        raise ValueError("MLOPS_ENDPOINT_BOOTSTRAP_KEYS must map key names to keys")
    for name in data:
        _check_name(name)
    return {str(k): str(v) for k, v in data.items()}


# -- the CLI: the admin calls, as an operator types them ------------------------------
def main(argv: list[str] | None = None) -> int:
    """``python -m include.mlops.serving.keys create NAME | revoke NAME | list``.

    Calls the admin API of ``MLOPS_ENDPOINT_URL`` with ``MLOPS_ENDPOINT_ADMIN_TOKEN``, then
    asks every replica (``MLOPS_ENDPOINT_URLS``) to reload, so the change holds at once.
    """
    import httpx

    parser = argparse.ArgumentParser(description="Create, revoke and list endpoint API keys.")
    parser.add_argument("command", choices=["create", "revoke", "list"])
    parser.add_argument("name", nargs="?")
    parser.add_argument("--reason", default=None, help="why (revoke; kept in the audit trail)")
    opts = parser.parse_args(argv)
    url = (os.environ.get("MLOPS_ENDPOINT_URL") or "").rstrip("/")
    token = os.environ.get("MLOPS_ENDPOINT_ADMIN_TOKEN")
    if not url or not token:
        print("set MLOPS_ENDPOINT_URL and MLOPS_ENDPOINT_ADMIN_TOKEN (eval \"$(make -s env)\")",
              file=sys.stderr)  # fmt: skip
        return 2
    headers = {"Authorization": f"Bearer {token}"}
    if opts.command != "list" and not opts.name:
        parser.error(f"{opts.command} needs a key name")
    with httpx.Client(timeout=30) as http:
        if opts.command == "list":
            response = http.get(f"{url}/admin/keys", headers=headers)
        elif opts.command == "create":
            response = http.post(f"{url}/admin/keys", headers=headers, json={"name": opts.name})
        else:
            response = http.request("DELETE", f"{url}/admin/keys/{opts.name}", headers=headers,
                                    json={"reason": opts.reason})  # fmt: skip
        if response.status_code >= 400:
            print(f"refused ({response.status_code}): {response.text}", file=sys.stderr)
            return 1
        print(json.dumps(response.json(), indent=2))
        replicas = [u.strip().rstrip("/") for u in
                    (os.environ.get("MLOPS_ENDPOINT_URLS") or url).split(",") if u.strip()]  # fmt: skip
        if opts.command != "list":
            for replica in replicas:
                http.post(f"{replica}/admin/reload", headers=headers)
    return 0


if __name__ == "__main__":
    sys.exit(main())

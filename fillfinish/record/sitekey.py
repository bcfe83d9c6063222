"""The site secret key: a key file outside the database that keys the record's ledger and signature proofs.

Whoever can write the database but not read this file cannot append, recompute or remove ledger rows, or write a
signature, without `record verify` noticing (docs/record.md, decision 0012). The file holds 32 random bytes as hex,
mode 0600; its fingerprint (first 16 hex digits of a SHA-256 over a label and the key) is written on every keyed
ledger row, so the record names the key that keyed it.

Where the key is found, in order: an explicit path (`--key FILE`, `RecordStore(key=...)`), the environment variable
FILLFINISH_SITE_KEY, the site config's `[record] key_file` (passed in by the caller), else the default path: beside
a SQLite database file (`fillfinish.db` -> `fillfinish.sitekey`), or for a server database a per-database file in
~/.config/fillfinish/site-keys/.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

KEY_ENV = "FILLFINISH_SITE_KEY"
"""Environment variable naming the site key file."""

KEY_BYTES = 32
_LABEL = b"fillfinish-site-key/1"


_BLOCK = 64
"""SHA-256's block size in bytes (RFC 2104's B)."""


def hmac_pads(secret: bytes) -> tuple[Any, Any]:
    """The inner and outer SHA-256 states of HMAC-SHA256 under `secret` (RFC 2104), copied for each message."""
    if len(secret) > _BLOCK:
        secret = hashlib.sha256(secret).digest()
    secret = secret.ljust(_BLOCK, b"\0")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in secret)), hashlib.sha256(bytes(b ^ 0x5C for b in secret)))


class SiteKeyError(Exception):
    """The site key file cannot be read or created; the message names the file and what is wrong."""


@dataclass(frozen=True)
class SiteKey:
    """A loaded site key: its secret bytes, fingerprint and the file it came from."""

    secret: bytes
    path: Path | None

    @cached_property
    def fingerprint(self) -> str:
        """16 hex digits naming the key (safe to print and to store in the record)."""
        return hashlib.sha256(_LABEL + self.secret).hexdigest()[:16]

    @cached_property
    def pads(self) -> tuple[Any, Any]:
        """The key's inner and outer SHA-256 states (hmac_pads), copied for each message."""
        return hmac_pads(self.secret)

    def mac(self, message: str) -> str:
        """HMAC-SHA256 of `message` (UTF-8) under this key, as 64 hex digits (hmac.new's value, from the pads: a
        third of an HMAC object's copy on the append path)."""
        inner, outer = self.pads
        inner, outer = inner.copy(), outer.copy()
        inner.update(message.encode("utf-8"))
        outer.update(inner.digest())
        return outer.hexdigest()

    def check(self, message: str, mac: str | None) -> bool:
        """True when `mac` is this key's HMAC of `message` (constant-time compare)."""
        return isinstance(mac, str) and hmac.compare_digest(self.mac(message), mac)

    def __repr__(self) -> str:
        """Never show the secret."""
        return f"SiteKey(fingerprint={self.fingerprint}, path={self.path})"


def ephemeral_key() -> SiteKey:
    """A random key that lives only in memory (in-memory SQLite records, tests)."""
    return SiteKey(secrets.token_bytes(KEY_BYTES), None)


def default_key_path(database_url: str) -> Path | None:
    """The default key file for a database URL: beside a SQLite file, per database under ~/.config for a server;
    None for an in-memory SQLite database (it gets an ephemeral key)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:") or url.query.get("mode") == "memory":
            return None
        return Path(database).with_suffix(".sitekey")
    identity = url.set(password=None).render_as_string(hide_password=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "fillfinish" / "site-keys" / f"{digest}.sitekey"


def resolve_key_path(database_url: str, explicit: str | os.PathLike[str] | None = None,
                     configured: str | os.PathLike[str] | None = None) -> Path | None:
    """The key file to use: explicit, else $FILLFINISH_SITE_KEY, else the site config's, else the default path."""
    for candidate in (explicit, os.environ.get(KEY_ENV) or None, configured):
        if candidate:
            return Path(candidate).expanduser()
    return default_key_path(database_url)


def read_key(path: Path) -> SiteKey:
    """Read a key file; SiteKeyError naming the file when it is missing or malformed."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise SiteKeyError(f"site key file not found: {path} (create it with `fillfinish site init --key {path}`, "
                           f"or point --key / ${KEY_ENV} / [record] key_file at the site's key)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SiteKeyError(f"site key file {path} cannot be read: {exc}") from exc
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) != KEY_BYTES:
        raise SiteKeyError(f"site key file {path}: expected {KEY_BYTES * 2} hex digits, found something else")
    return SiteKey(secret, path)


def create_key(path: Path) -> SiteKey:
    """Create a new key file (mode 0600, never overwriting one); SiteKeyError when it exists or cannot be written."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SiteKeyError(f"site key file {path} already exists; it is never overwritten") from None
    except OSError as exc:
        raise SiteKeyError(f"cannot create site key file {path}: {exc}") from exc
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secret.hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return SiteKey(secret, path)


def load_or_create(path: Path) -> SiteKey:
    """The key at `path`, created on first use when the file does not exist yet."""
    if path.exists():
        return read_key(path)
    try:
        return create_key(path)
    except SiteKeyError:
        if path.exists():  # another process created it at the same moment
            return read_key(path)
        raise


def entry_signature_message(*, batch_id: str, signed_hash: str, signed_seq: int, user_id: str, meaning: str,
                            signed_at: str) -> str:
    """The text a signature proof covers: batch, signed hash and seq, the signer, the meaning and the time."""
    return "\x1f".join(("sig/1", batch_id, signed_hash, str(signed_seq), user_id, meaning, signed_at))


def ledger_mac_message(*, line_id: str, line_seq: int, ledger_hash: str, key_id: str) -> str:
    """The text a ledger row's MAC covers: its line, its place in the line's chain, its hash and the key id."""
    return "\x1f".join(("ledger/1", line_id, str(line_seq), ledger_hash, key_id))

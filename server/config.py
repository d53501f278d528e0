"""Service configuration: a TOML file, with embedded defaults for the demo.

```toml
db = "rivertrace.db"            # SQLite file (WAL)
host = "127.0.0.1"
port = 50051                    # 0: any free port
max_message_mb = 16
workers = 16                    # threads reserved for unary calls (streams have their own capacity)
heavy_calls = 2                 # Trace and Forecast computing at once (others wait): reads stay fast
compute_processes = true        # ... in heavy_calls worker processes, off the server's interpreter (false: threads)
allow_insecure = false          # true: allow bearer tokens over plaintext on a non-loopback address
[tls]                           # optional: serve TLS (and mTLS with client_ca)
cert = "server.crt"
key = "server.key"
client_ca = "ca.crt"
[tokens]                        # bearer token -> "client:role"; roles: admin, bureau, hub, modeller
"s3cret-bureau" = "duty-app:bureau"
"s3cret-hub" = "city-hub:hub"
[streams]                       # long-lived streams: their own bounded capacity
max_open = 700                  # all open streams together
idle_ingest_s = 120             # an IngestReadings stream silent this long is closed
roles = { admin = 700, bureau = 600, hub = 500, modeller = 50 }   # open streams per role
[delivery]                      # alert delivery to hubs
allow = ["127.0.0.0/8", "::1", "localhost"]   # hosts (names, IPs or CIDR networks) targets may point at
ca = "hubs-ca.crt"              # roots for TLS hubs and https webhooks (default: the system's)
connect_timeout_s = 3
read_timeout_s = 10
backoff_cap_s = 30              # a returning hub is retried within this long
dead_letter_after_s = 86400     # failing this long since queued: dead-lettered (ReplayDeliveries)
[limits]
reading_past_days = 7300        # reading times accepted from now - this ...
reading_future_s = 86400        # ... to now + this
[hj212]                         # optional: the HJ 212 gateway for online monitors (server/hj212)
port = 6000                     # or `rivertrace serve --hj212-port 6000`
host = "0.0.0.0"                # default: the service's host; other than loopback needs a password
password = "123456"             # optional: packets with another PW are refused
```

Without ``[tokens]`` the service runs open (every caller is admin) and only on the loopback
address: the embedded demo default. It says so in its log. Every problem with a configuration is
one :class:`ConfigError` with a message naming the key: never a traceback.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("admin", "bureau", "hub", "modeller")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
DEFAULT_ALLOW = ("127.0.0.0/8", "::1", "localhost")
DEFAULT_STREAM_ROLES = {"admin": 700, "bureau": 600, "hub": 500, "modeller": 50}


class ConfigError(ValueError):
    """A configuration file that cannot be used."""


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    role: str


def is_loopback(host: str) -> bool:
    """Whether a bind address is loopback only (``0.0.0.0`` and ``[::]`` are not)."""
    h = host.strip("[]")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Config:
    db: Path = Path("rivertrace.db")
    host: str = "127.0.0.1"
    port: int = 50051
    max_message_mb: int = 16
    tokens: dict[str, Client] = field(default_factory=dict)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    workers: int = 16
    heavy_calls: int = 2
    compute_processes: bool = True
    outbox_poll_s: float = 0.5
    allow_insecure: bool = False
    max_streams: int = 700
    stream_roles: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_STREAM_ROLES))
    idle_ingest_s: float = 120.0
    delivery_allow: tuple[str, ...] = DEFAULT_ALLOW
    delivery_ca: Path | None = None
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    backoff_cap_s: float = 30.0
    dead_letter_after_s: float = 86400.0
    reading_past_days: float = 7300.0
    reading_future_s: float = 86400.0
    hj212_port: int | None = None
    hj212_host: str | None = None
    hj212_password: str | None = None

    @property
    def open_mode(self) -> bool:
        """No tokens configured: every caller is admin; only loopback is allowed."""
        return not self.tokens

    def check(self, source: str = "config") -> None:
        """Raise :class:`ConfigError` (one message naming the key) if this configuration cannot run."""
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(f"{source}: {message}")

        for key in ("workers", "max_message_mb", "max_streams", "heavy_calls"):
            v = getattr(self, key)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 1, f"{key} must be a positive integer, got {v!r}")
        need(isinstance(self.port, int) and 0 <= self.port <= 65535, f"port must be 0-65535, got {self.port!r}")
        for key in ("outbox_poll_s", "idle_ingest_s", "connect_timeout_s", "read_timeout_s", "backoff_cap_s",
                    "dead_letter_after_s", "reading_past_days", "reading_future_s"):
            v = getattr(self, key)
            need(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1e9, f"{key} must be a positive number, got {v!r}")
        for role, n in self.stream_roles.items():
            need(role in ROLES, f"[streams] roles: unknown role {role!r}; roles are {ROLES}")
            need(isinstance(n, int) and n >= 0, f"[streams] roles: {role} must be a non-negative integer, got {n!r}")
        for token, who in self.tokens.items():
            need(bool(token.strip()), f"[tokens]: an empty token (for {who.name!r}) would let a bare 'Bearer ' header in")
            need(token == token.strip(), f"[tokens]: the token for {who.name!r} has surrounding spaces")
            need(who.role in ROLES, f"[tokens]: role {who.role!r} of {who.name!r} is not one of {ROLES}")
        need((self.tls_cert is None) == (self.tls_key is None), "[tls] needs both cert and key")
        for key in ("tls_cert", "tls_key", "tls_client_ca", "delivery_ca"):
            p = getattr(self, key)
            name = "[delivery] ca" if key == "delivery_ca" else f"[tls] {key[4:]}"
            need(p is None or Path(p).is_file(), f"{name}: file {str(p)!r} does not exist")
        if self.open_mode:
            need(is_loopback(self.host), f"without [tokens] the service only listens on loopback; configure tokens to "
                 f"bind {self.host!r}")
        elif self.tls_cert is None and not is_loopback(self.host) and not self.allow_insecure:
            raise ConfigError(f"{source}: bearer tokens over plaintext on {self.host!r} would be readable on the network; "
                              "configure [tls] cert and key, or set allow_insecure = true")
        if self.hj212_port is not None:
            need(isinstance(self.hj212_port, int) and not isinstance(self.hj212_port, bool)
                 and 0 <= self.hj212_port <= 65535, f"[hj212] port must be 0-65535, got {self.hj212_port!r}")
            need(self.hj212_password is not None or is_loopback(self.hj212_host or self.host),
                 f"[hj212] without a password only listens on loopback; set password to bind "
                 f"{self.hj212_host or self.host!r}")
        from .endpoints import parse_allow  # the allow-list's syntax is checked once, here

        try:
            parse_allow(self.delivery_allow)
        except ValueError as err:
            raise ConfigError(f"{source}: [delivery] allow: {err}") from err


_TOP = {"db", "host", "port", "max_message_mb", "workers", "heavy_calls", "compute_processes", "outbox_poll_s",
        "allow_insecure"}
_SECTIONS = {
    "streams": {"max_open": "max_streams", "idle_ingest_s": "idle_ingest_s", "roles": "stream_roles"},
    "delivery": {"allow": "delivery_allow", "ca": "delivery_ca", "connect_timeout_s": "connect_timeout_s",
                 "read_timeout_s": "read_timeout_s", "backoff_cap_s": "backoff_cap_s",
                 "dead_letter_after_s": "dead_letter_after_s"},
    "limits": {"reading_past_days": "reading_past_days", "reading_future_s": "reading_future_s"},
    "hj212": {"port": "hj212_port", "host": "hj212_host", "password": "hj212_password"},
}


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Read a TOML config (or the defaults), then apply keyword overrides (CLI flags).

    Raises :class:`ConfigError` with one message for anything wrong (never another exception).
    """
    src = str(path) if path is not None else "config"
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise ConfigError(f"{path}: {err}") from err
    try:
        tokens: dict[str, Client] = {}
        token_table = raw.pop("tokens", {}) or {}
        if not isinstance(token_table, dict):
            raise ConfigError(f"{src}: [tokens] must be a table of token = \"client:role\"")
        for token, who in token_table.items():
            name, _, role = str(who).partition(":")
            if role not in ROLES:
                raise ConfigError(f"{src}: token for {name!r}: role {role!r} is not one of {ROLES}")
            tokens[token] = Client(name, role)
        tls = raw.pop("tls", {}) or {}
        extra: dict[str, Any] = {}
        for section, keys in _SECTIONS.items():
            table = raw.pop(section, {}) or {}
            if not isinstance(table, dict):
                raise ConfigError(f"{src}: [{section}] must be a table")
            unknown = set(table) - set(keys)
            if unknown:
                raise ConfigError(f"{src}: [{section}] unknown key(s) {sorted(unknown)}; known: {sorted(keys)}")
            extra.update({keys[k]: v for k, v in table.items()})
        unknown = set(raw) - _TOP
        if unknown:
            raise ConfigError(f"{src}: unknown key(s) {sorted(unknown)}; known: {sorted(_TOP | {'tls', 'tokens', *_SECTIONS})}")
        values: dict[str, Any] = {**raw, **extra, **{k: v for k, v in overrides.items() if v is not None}}
        if "db" in values:
            values["db"] = Path(values["db"])
        if "delivery_ca" in values:
            values["delivery_ca"] = Path(values["delivery_ca"])
        if "delivery_allow" in values:
            allow = values["delivery_allow"]
            if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
                raise ConfigError(f"{src}: [delivery] allow must be a list of strings")
            values["delivery_allow"] = tuple(allow)
        if "stream_roles" in values:
            values["stream_roles"] = {**DEFAULT_STREAM_ROLES, **dict(values["stream_roles"])}
        for key in ("allow_insecure", "compute_processes"):
            if not isinstance(values.get(key, False), bool):
                raise ConfigError(f"{src}: {key} must be true or false")
        cfg = Config(tokens=tokens, tls_cert=Path(tls["cert"]) if "cert" in tls else None,
                     tls_key=Path(tls["key"]) if "key" in tls else None,
                     tls_client_ca=Path(tls["client_ca"]) if "client_ca" in tls else None, **values)
    except ConfigError:
        raise
    except (TypeError, ValueError, AttributeError) as err:
        raise ConfigError(f"{src}: {err}") from err
    cfg.check(src)
    return cfg

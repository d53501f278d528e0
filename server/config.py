"""Service configuration: a TOML file, with embedded defaults for the demo.

```toml
db = "rivertrace.db"            # SQLite file (WAL)
host = "127.0.0.1"
port = 50051                    # 0: any free port
max_message_mb = 16
[tls]                           # optional: serve TLS (and mTLS with client_ca)
cert = "server.crt"
key = "server.key"
client_ca = "ca.crt"
[tokens]                        # bearer token -> "client:role"; roles: admin, bureau, hub, modeller
"s3cret-bureau" = "duty-app:bureau"
"s3cret-hub" = "city-hub:hub"
[hj212]                         # optional: the HJ 212 gateway for online monitors (server/hj212)
port = 6000                     # or `rivertrace serve --hj212-port 6000`
host = "0.0.0.0"                # default: the service's host; other than loopback needs a password
password = "123456"             # optional: packets with another PW are refused
```

Without ``[tokens]`` the service runs open (every caller is admin) and only on the loopback
address: the embedded demo default. It says so in its log.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("admin", "bureau", "hub", "modeller")


class ConfigError(ValueError):
    """A configuration file that cannot be used."""


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    role: str


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
    outbox_poll_s: float = 0.5
    hj212_port: int | None = None
    hj212_host: str | None = None
    hj212_password: str | None = None

    @property
    def open_mode(self) -> bool:
        """No tokens configured: every caller is admin; only loopback is allowed."""
        return not self.tokens


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Read a TOML config (or the defaults), then apply keyword overrides (CLI flags)."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ConfigError(f"{path}: {err}") from err
    tokens: dict[str, Client] = {}
    for token, who in (raw.pop("tokens", {}) or {}).items():
        name, _, role = str(who).partition(":")
        if role not in ROLES:
            raise ConfigError(f"{path}: token for {name!r}: role {role!r} is not one of {ROLES}")
        tokens[token] = Client(name, role)
    tls = raw.pop("tls", {}) or {}
    hj212 = {f"hj212_{k}": v for k, v in (raw.pop("hj212", {}) or {}).items()}
    if set(hj212) - {"hj212_port", "hj212_host", "hj212_password"}:
        raise ConfigError(f"{path}: [hj212] knows port, host and password; got {sorted(k[6:] for k in hj212)}")
    known = {"db", "host", "port", "max_message_mb", "workers", "outbox_poll_s"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(known | {'tls', 'tokens', 'hj212'})}")
    values: dict[str, Any] = {**raw, **hj212, **{k: v for k, v in overrides.items() if v is not None}}
    if "db" in values:
        values["db"] = Path(values["db"])
    cfg = Config(tokens=tokens, tls_cert=Path(tls["cert"]) if "cert" in tls else None,
                 tls_key=Path(tls["key"]) if "key" in tls else None,
                 tls_client_ca=Path(tls["client_ca"]) if "client_ca" in tls else None, **values)
    if (cfg.tls_cert is None) != (cfg.tls_key is None):
        raise ConfigError(f"{path}: [tls] needs both cert and key")
    if cfg.open_mode and cfg.host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError("without [tokens] the service only listens on loopback; configure tokens to bind "
                          f"{cfg.host!r}")
    if cfg.hj212_port is not None and cfg.hj212_password is None and (cfg.hj212_host or cfg.host) not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"{path}: [hj212] without a password only listens on loopback; set password to bind "
                          f"{cfg.hj212_host or cfg.host!r}")
    return cfg

"""Configuration from environment variables, read once and passed to create_app()."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import ip_network
from pathlib import Path

from media import MediaConfig, parse_ice_servers

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = REPO_ROOT / "data"
    database_url: str = ""
    redis_url: str = ""
    #: the Redis pub/sub channel socket.io relays on (one per deployment)
    redis_channel: str = "cunhui"
    recordings_dir: Path = REPO_ROOT / "recordings"
    #: days a recording's media files are kept after the meeting (0: forever);
    #: the minutes and the timeline are never deleted with them
    recordings_retention_days: int = 0
    #: record every live meeting (and serve it as live HLS); off only for
    #: benchmarks and nodes without a disk for media
    record_meetings: bool = True
    #: the live HLS's low video rendition (~360p, at most 300 kbit/s), encoded
    #: once per meeting; off (HLS_LOW_RENDITION=0) on a node short of CPU
    hls_low_rendition: bool = True
    secret_key: str = field(default="", repr=False)
    public_url: str = ""
    ice_servers: str = ""
    ice_host_addresses: tuple[str, ...] = ()
    #: reverse proxies whose X-Forwarded-For names the client (addresses or networks)
    trusted_proxies: tuple[str, ...] = ()
    log_level: str = "INFO"
    #: the web/ folder (templates, static files, translations, node_modules)
    web_dir: Path = REPO_ROOT / "web"
    #: login tokens and cookies stay valid this long
    token_max_age: int = 14 * 24 * 3600
    # ---- limits that keep one hostile or broken client from hurting the others
    #: threads that hash passwords (argon2 takes ~0.1 s of a core, never on the event loop)
    hash_workers: int = 2
    #: password checks allowed to wait for a hashing thread; more are answered 503
    hash_queue: int = 16
    #: a secret vote needs at least this many eligible voters (else a tally names them)
    secret_vote_min_electorate: int = 5
    #: WHIP/WHEP sessions not yet connected, per client address and in all
    media_pending_per_address: int = 8
    media_pending_total: int = 200
    #: viewers get the meeting's audio re-encoded once with Opus in-band FEC (AUDIO_FEC)
    audio_fec: bool = True
    #: viewers that offer audio/red get each Opus frame twice, in two packets (AUDIO_RED)
    audio_red: bool = True
    #: seconds a WHIP/WHEP session may take to connect (and a publisher to send media)
    media_connect_timeout: float = 30.0
    #: seconds the host's connection may stay lost before the committee is asked
    #: whether to end the meeting (HOST_AWAY_GRACE); nothing ends by itself
    host_away_grace: float = 120.0
    #: seconds a participant whose last device left may take to come back before the
    #: leave is recorded (ATTENDANCE_LEAVE_GRACE; 0: at once): a short drop is not leaving
    attendance_leave_grace: float = 60.0
    #: seconds a socket.io connection may stay without joining a meeting
    socket_join_timeout: float = 30.0
    #: socket.io events per participant: a steady rate per second and a burst
    socket_event_rate: float = 5.0
    socket_event_burst: int = 20
    #: a socket refused this many events without a calm spell (the burst's refill time,
    #: burst / rate) is flooding and is disconnected (SOCKET_FLOOD_DISCONNECT; x10 committee)
    socket_flood_disconnect: int = 200
    #: guest sign-ins per client address per 10 minutes
    guest_joins_per_address: int = 30
    #: seconds an HTTP client may take to send a request's headers (slow clients)
    http_header_timeout: float = 20.0
    #: our own JavaScript and CSS go out minified (MINIFY_ASSETS=0: as written, to debug)
    minify_assets: bool = True
    #: seconds a request waits for the database (a pooled connection, connecting, each
    #: PostgreSQL statement, SQLite's lock) before it is answered 503 (DB_TIMEOUT)
    db_timeout: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Read every setting from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("DATA_DIR") or REPO_ROOT / "data")
        try:
            port = int(env.get("PORT") or 8080)
        except ValueError as exc:
            raise ConfigError(f"PORT must be a number, not {env.get('PORT')!r}") from exc
        try:
            retention = int(env.get("RECORDINGS_RETENTION_DAYS") or 0)
        except ValueError as exc:
            raise ConfigError("RECORDINGS_RETENTION_DAYS must be a whole number of days") from exc
        if retention < 0:
            raise ConfigError("RECORDINGS_RETENTION_DAYS must be 0 (keep forever) or more")
        numbers = _numbers(env)
        values = dict(
            **numbers,
            host=env.get("HOST") or "127.0.0.1",
            port=port,
            data_dir=data_dir,
            database_url=normalize_database_url(
                env.get("DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'cunhui.db'}"
            ),
            redis_url=env.get("REDIS_URL", ""),
            redis_channel=env.get("REDIS_CHANNEL") or "cunhui",
            recordings_dir=Path(env.get("RECORDINGS_DIR") or REPO_ROOT / "recordings"),
            recordings_retention_days=retention,
            record_meetings=(env.get("RECORD_MEETINGS") or "1").strip().lower()
            not in ("0", "false", "no", "off"),
            hls_low_rendition=(env.get("HLS_LOW_RENDITION") or "1").strip().lower()
            not in ("0", "false", "no", "off"),
            audio_fec=(env.get("AUDIO_FEC") or "1").strip().lower()
            not in ("0", "false", "no", "off"),
            audio_red=(env.get("AUDIO_RED") or "1").strip().lower()
            not in ("0", "false", "no", "off"),
            minify_assets=(env.get("MINIFY_ASSETS") or "1").strip().lower()
            not in ("0", "false", "no", "off"),
            secret_key=env.get("SECRET_KEY", ""),
            public_url=(env.get("PUBLIC_URL") or "").rstrip("/"),
            ice_servers=env.get("ICE_SERVERS", ""),
            ice_host_addresses=tuple(
                a.strip() for a in env.get("ICE_HOST_ADDRESSES", "").split(",") if a.strip()
            ),
            trusted_proxies=tuple(
                a.strip() for a in env.get("TRUSTED_PROXIES", "").split(",") if a.strip()
            ),
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        )
        values.update(overrides)
        settings = cls(**values)
        settings.media_config()  # fail early on a bad ICE_SERVERS
        for proxy in settings.trusted_proxies:
            try:
                ip_network(proxy, strict=False)
            except ValueError as exc:
                raise ConfigError(
                    f"TRUSTED_PROXIES: {proxy!r} is not an address or network"
                ) from exc
        return settings

    def with_secret(self) -> Settings:
        """Return settings whose secret key is set: SECRET_KEY, or one kept in DATA_DIR."""
        if self.secret_key:
            return self
        path = self.data_dir / "secret_key"
        if path.exists():
            key = path.read_text().strip()
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            key = secrets.token_urlsafe(48)
            path.touch(mode=0o600)
            path.write_text(key + "\n")
            logger.info("generated a new SECRET_KEY in %s", path)
        return _replace(self, secret_key=key)

    def media_config(self) -> MediaConfig:
        try:
            servers = parse_ice_servers(self.ice_servers)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        return MediaConfig(
            ice_servers=servers,
            host_addresses=self.ice_host_addresses,
            connect_timeout=self.media_connect_timeout,
            pending_per_client=self.media_pending_per_address,
            pending_total=self.media_pending_total,
            audio_fec=self.audio_fec,
            audio_red=self.audio_red,
        )

    def base_url(self, request_url: str | None = None) -> str:
        """PUBLIC_URL if set, else the URL the request came in on, else host:port."""
        if self.public_url:
            return self.public_url
        if request_url:
            return request_url.rstrip("/")
        return f"http://{self.host}:{self.port}"


#: the numeric limits: (environment variable, field, type, smallest allowed)
_LIMITS = (
    ("HASH_WORKERS", "hash_workers", int, 1),
    ("HASH_QUEUE", "hash_queue", int, 0),
    ("SECRET_VOTE_MIN_ELECTORATE", "secret_vote_min_electorate", int, 1),
    ("MEDIA_PENDING_PER_ADDRESS", "media_pending_per_address", int, 1),
    ("MEDIA_PENDING_TOTAL", "media_pending_total", int, 1),
    ("MEDIA_CONNECT_TIMEOUT", "media_connect_timeout", float, 1),
    ("SOCKET_JOIN_TIMEOUT", "socket_join_timeout", float, 1),
    ("HOST_AWAY_GRACE", "host_away_grace", float, 1),
    ("ATTENDANCE_LEAVE_GRACE", "attendance_leave_grace", float, 0),
    ("SOCKET_EVENT_RATE", "socket_event_rate", float, 0.1),
    ("SOCKET_EVENT_BURST", "socket_event_burst", int, 1),
    ("SOCKET_FLOOD_DISCONNECT", "socket_flood_disconnect", int, 1),
    ("GUEST_JOINS_PER_ADDRESS", "guest_joins_per_address", int, 1),
    ("HTTP_HEADER_TIMEOUT", "http_header_timeout", float, 1),
    ("DB_TIMEOUT", "db_timeout", float, 0.5),
)


def _numbers(env: Mapping[str, str]) -> dict:
    """The numeric limits that are set in ``env``, checked."""
    values: dict = {}
    for name, attr, kind, smallest in _LIMITS:
        raw = (env.get(name) or "").strip()
        if not raw:
            continue
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, not {raw!r}") from None
        if value < smallest:
            raise ConfigError(f"{name} must be at least {smallest}")
        values[attr] = value
    return values


def normalize_database_url(url: str) -> str:
    """Accept the usual URL spellings and pick the async driver for each."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///"):
        url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if not (url.startswith("postgresql+asyncpg://") or url.startswith("sqlite+aiosqlite://")):
        raise ConfigError(f"DATABASE_URL must be a SQLite or PostgreSQL URL, not {url!r}")
    return url


def _replace(settings: Settings, **changes) -> Settings:
    from dataclasses import replace

    return replace(settings, **changes)

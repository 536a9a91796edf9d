"""Configuration and the `cunhui` command as an operator uses them."""

from __future__ import annotations

import pytest

from media import parse_ice_servers
from server.settings import ConfigError, Settings, normalize_database_url

from .support.processes import run_cli


def test_defaults_are_embedded_sqlite_and_no_ice_servers(tmp_path):
    settings = Settings.from_env({"DATA_DIR": str(tmp_path)})
    assert settings.host == "127.0.0.1" and settings.port == 8080
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/cunhui.db"
    assert settings.media_config().ice_servers == ()  # never a public STUN server by surprise
    assert settings.media_config().rtc_configuration().iceServers == []


def test_secret_key_is_generated_once_and_kept(tmp_path):
    first = Settings.from_env({"DATA_DIR": str(tmp_path)}).with_secret()
    second = Settings.from_env({"DATA_DIR": str(tmp_path)}).with_secret()
    assert first.secret_key and first.secret_key == second.secret_key
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    given = Settings.from_env({"DATA_DIR": str(tmp_path), "SECRET_KEY": "k"}).with_secret()
    assert given.secret_key == "k"


def test_database_urls_get_async_drivers():
    assert normalize_database_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalize_database_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalize_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    with pytest.raises(ConfigError):
        normalize_database_url("mysql://u@h/db")


def test_ice_servers_forms():
    assert parse_ice_servers("") == ()
    servers = parse_ice_servers("stun:stun.example.org:3478, turn:turn.example.org")
    assert [s.urls for s in servers] == ["stun:stun.example.org:3478", "turn:turn.example.org"]
    servers = parse_ice_servers(
        '[{"urls": "turn:t.example.org", "username": "u", "credential": "p"}]'
    )
    assert servers[0].username == "u" and servers[0].credential == "p"
    with pytest.raises(ConfigError):
        Settings.from_env({"ICE_SERVERS": "[not json"})


def test_admin_create_user_then_login_and_duplicate_refused(tmp_path):
    env = {"DATA_DIR": str(tmp_path)}
    created = run_cli("admin", "create-user", "clerk", "--password", "secret123", env=env)
    assert created.returncode == 0, created.stderr
    assert "clerk" in created.stdout
    again = run_cli("admin", "create-user", "clerk", "--password", "other123", env=env)
    assert again.returncode != 0
    assert "already exists" in again.stderr
    short = run_cli("admin", "create-user", "x", "--password", "123", env=env)
    assert short.returncode != 0 and "password" in short.stderr

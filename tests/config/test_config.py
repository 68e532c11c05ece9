"""maildesk.toml loading: the shipped example works; every mistake names file, key and expectation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maildesk.config.load import find_config_path, load_config
from maildesk.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

BASE = """
[database]
url = "sqlite:///var/maildesk.db"

[mail]
addresses = ["support@example.test"]
secret = "s3cret-0123456789-abcdefghijklmnop-XYZ"

[outbound]
maildir = "var/sent"
"""


def write(tmp_path, text):
    path = tmp_path / "maildesk.toml"
    path.write_text(text)
    return path


def test_shipped_example_loads(tmp_path):
    text = (ROOT / "maildesk.toml").read_text()
    cfg = load_config(write(tmp_path, text))
    assert cfg.database.url == f"sqlite:///{tmp_path.resolve()}/var/maildesk.db"
    assert (cfg.smtp.host, cfg.smtp.port, cfg.smtp.lmtp) == ("127.0.0.1", 2525, False)
    assert cfg.mail.ticket_prefix == "MD"
    assert cfg.outbound.maildir == "var/sent" and cfg.outbound.smarthost is None
    secret = tmp_path / "var" / "secret"
    assert secret.exists() and oct(secret.stat().st_mode & 0o777) == "0o600"
    assert cfg.mail.secret.reveal() == secret.read_text().strip()
    assert load_config(tmp_path / "maildesk.toml").mail.secret.reveal() == cfg.mail.secret.reveal()  # stable


def test_defaults_and_relative_paths(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.smtp.max_message_size == 26_214_400
    smtp = cfg.smtp
    assert (smtp.max_line_length, smtp.max_connections, smtp.max_connections_per_client) == (65536, 100, 50)
    assert (smtp.idle_timeout, smtp.session_timeout, smtp.data_timeout, smtp.min_data_rate) == (300, 1800, 600, 1024)
    assert (cfg.workflow.notify_limit, cfg.workflow.notify_window) == (5, 3600)
    assert (cfg.mail.max_addresses_per_mail, cfg.mail.max_security_events) == (100, 10)
    assert (cfg.outbound.notice_max_attempts, cfg.outbound.retry_base, cfg.outbound.retry_max) == (8, 30, 3600)
    assert cfg.resolve("var/sent") == tmp_path.resolve() / "var/sent"
    assert cfg.config_dir == tmp_path.resolve() / "config"


@pytest.mark.parametrize("patch, key, expected", [
    ("[smtp]\nport = \"abc\"\n", "[smtp] port", "expected an integer, got 'abc'"),
    ("[smtp]\nprot = 25\n", "[smtp] prot", "unknown key; expected one of"),
    ("[smtp]\nlmtp = 1\n", "[smtp] lmtp", "expected true or false"),
    ("[smtp]\nport = 70000\n", "[smtp] port", "expected 1-65535"),
    ("[smtp]\nmax_line_length = 500\n", "[smtp] max_line_length", "expected at least 998 octets"),
    ("[smtp]\nmax_connections = 0\n", "[smtp] max_connections", "expected at least 1 connection"),
    ("[smtp]\nmax_connections_per_client = -1\n", "[smtp] max_connections_per_client", "expected at least 1 connection"),
    ("[smtp]\nsession_timeout = 0\n", "[smtp] session_timeout", "expected a positive number of seconds"),
    ("[smtp]\ndata_timeout = -5\n", "[smtp] data_timeout", "expected a positive number of seconds"),
    ("[smtp]\nmin_data_rate = -1\n", "[smtp] min_data_rate", "expected bytes per second, 0 for no minimum"),
    ("[workflow]\nnotify_window = 10\n", "[workflow] notify_window", "expected seconds, at least 60, got 10"),
    ("[workflow]\nnotify_limit = -1\n", "[workflow] notify_limit", "expected 0 (no limit) or more"),
    ("[mail]\nmax_addresses_per_mail = 0\n", "[mail] max_addresses_per_mail", "expected a count, at least 1"),
    ("[mail]\nmax_security_events = 0\n", "[mail] max_security_events", "expected a count, at least 1"),
    ("[outbound]\nnotice_max_attempts = 0\n", "[outbound] notice_max_attempts", "expected at least 1, got 0"),
    ("[bogus]\nx = 1\n", "[bogus]", "unknown section"),
    ("[database]\nsqlite_synchronous = \"sometimes\"\n", "[database] sqlite_synchronous", "expected one of full, normal, extra"),
])
def test_bad_values_name_file_key_and_expectation(tmp_path, patch, key, expected):
    text = BASE
    section = patch.split("]")[0] + "]"
    text = text.replace(section + "\n", patch, 1) if section in text else text + "\n" + patch
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert str(tmp_path / "maildesk.toml") in message
    assert key in message and expected in message


def test_missing_required_values(tmp_path):
    with pytest.raises(ConfigError, match=r"\[mail\] secret: required key is missing"):
        load_config(write(tmp_path, BASE.replace('secret = "s3cret-0123456789-abcdefghijklmnop-XYZ"\n', "")))
    with pytest.raises(ConfigError, match=r"\[mail\]: this section is required"):
        load_config(write(tmp_path, BASE.split("[mail]")[0]))
    with pytest.raises(ConfigError, match=r"smarthost = "):
        load_config(write(tmp_path, BASE.replace('maildir = "var/sent"', "")))


def test_line_number_is_reported(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, BASE + "\n[smtp]\nhost = \"x\"\nport = \"25\"\n"))
    assert info.value.line == BASE.count("\n") + 4


def test_invalid_toml_reports_line(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(write(tmp_path, BASE + "\n[smtp\n"))
    assert info.value.line


def test_secret_from_env_file_and_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MD_TEST_SECRET", "from-env-0123456789-abcdefghijklmnop")
    cfg = load_config(write(tmp_path, BASE.replace('"s3cret-0123456789-abcdefghijklmnop-XYZ"', '{ env = "MD_TEST_SECRET" }')))
    assert cfg.mail.secret.reveal() == "from-env-0123456789-abcdefghijklmnop"
    assert "from-env-0123456789-abcdefghijklmnop" not in repr(cfg)
    (tmp_path / "key").write_text("from-file-0123456789-abcdefghijklmnop\n")
    cfg = load_config(write(tmp_path, BASE.replace('"s3cret-0123456789-abcdefghijklmnop-XYZ"', '{ file = "key" }')))
    assert cfg.mail.secret.reveal() == "from-file-0123456789-abcdefghijklmnop"
    cfg = load_config(write(tmp_path, BASE.replace('"s3cret-0123456789-abcdefghijklmnop-XYZ"', '{ command = "echo from-command-0123456789-abcdefghijklmno" }')))
    assert cfg.mail.secret.reveal() == "from-command-0123456789-abcdefghijklmno"


@pytest.mark.parametrize("weak", ["a", "test-secret-not-for-production", "a" * 40, "ab" * 20, "password" * 4])
def test_weak_secret_is_refused_with_a_way_to_make_one(tmp_path, weak):
    with pytest.raises(ConfigError, match=r"\[mail\] secret.*(too short|too predictable).*secrets.token_urlsafe"):
        load_config(write(tmp_path, BASE.replace('"s3cret-0123456789-abcdefghijklmnop-XYZ"', f'"{weak}"')))


def test_generated_and_random_secrets_pass(tmp_path):
    import secrets

    for value in (secrets.token_urlsafe(32), secrets.token_hex(16), secrets.token_hex(32)):
        assert load_config(write(tmp_path, BASE.replace('"s3cret-0123456789-abcdefghijklmnop-XYZ"', f'"{value}"'))).mail.secret.reveal() == value


def test_missing_secret_sources_fail_at_load(tmp_path, monkeypatch):
    monkeypatch.delenv("MD_NOPE", raising=False)
    with pytest.raises(ConfigError, match="MD_NOPE is not set"):
        load_config(write(tmp_path, BASE.replace('"s3cret-0123456789-abcdefghijklmnop-XYZ"', '{ env = "MD_NOPE" }')))
    with pytest.raises(ConfigError, match="cannot read secret file"):
        load_config(write(tmp_path, BASE.replace('"s3cret-0123456789-abcdefghijklmnop-XYZ"', '{ file = "missing" }')))
    with pytest.raises(ConfigError, match="failed \\(exit 3\\)"):
        load_config(write(tmp_path, BASE.replace('"s3cret-0123456789-abcdefghijklmnop-XYZ"', '{ command = "sh -c \'exit 3\'" }')))
    with pytest.raises(ConfigError, match="exactly one of env, file or command"):
        load_config(write(tmp_path, BASE.replace('"s3cret-0123456789-abcdefghijklmnop-XYZ"', '{ env = "A", file = "b" }')))


def test_command_secret_is_cached_and_refreshed(tmp_path):
    counter = tmp_path / "n"
    counter.write_text("0")
    cmd = f"sh -c 'n=$(cat {counter}); n=$((n+1)); echo $n > {counter}; echo token$n'"
    quoted = cmd.replace('"', '\\"')
    imap = f'\n[[imap]]\nhost = "h"\nusername = "u"\noauth2_token = {{ command = "{quoted}" }}\n'
    cfg = load_config(write(tmp_path, BASE + imap))
    token = cfg.imap[0].oauth2_token
    first = token.reveal()
    assert token.reveal() == first
    assert token.reveal(refresh=True) != first


def test_config_path_lookup(monkeypatch):
    monkeypatch.delenv("MAILDESK_CONFIG", raising=False)
    assert find_config_path(None) == Path("maildesk.toml")
    monkeypatch.setenv("MAILDESK_CONFIG", "/etc/maildesk.toml")
    assert find_config_path(None) == Path("/etc/maildesk.toml")
    assert find_config_path("x.toml") == Path("x.toml")
    assert os.environ["MAILDESK_CONFIG"]

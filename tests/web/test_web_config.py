"""[web] in maildesk.toml: off by default, on in the shipped example, mistakes named."""

from __future__ import annotations

import pytest

from maildesk.config.load import load_config
from maildesk.errors import ConfigError
from tests.support import ROOT, free_port, write_config


def test_off_by_default_and_on_in_the_shipped_example(tmp_path):
    assert not load_config(write_config(tmp_path, port=free_port())).web.enabled
    text = (ROOT / "maildesk.toml").read_text()
    (tmp_path / "shipped").mkdir()
    (tmp_path / "shipped" / "maildesk.toml").write_text(text)
    web = load_config(tmp_path / "shipped" / "maildesk.toml").web
    assert web.enabled and web.address == ("127.0.0.1", 8025) and web.url == "http://127.0.0.1:8025"


@pytest.mark.parametrize(("lines", "key"), [('listen = "nowhere"', "listen"), ('listen = "127.0.0.1:0"', "listen"),
                                            ('base_url = "desk.example.com"', "base_url"), ('tls_cert = "c.pem"', "tls_key"),
                                            ("page_size = 0", "page_size"), ("link_minutes = 0", "link_minutes")])
def test_mistakes_name_the_key(tmp_path, lines, key):
    path = write_config(tmp_path, port=free_port(), extra=f"[web]\n{lines}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"[web] {key}" in str(err.value)


def test_address_in_use_fails_at_start_naming_the_key(tmp_path):
    import socket

    from maildesk.web.serve import bind

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    cfg = load_config(write_config(tmp_path, port=free_port(), extra=f'[web]\nlisten = "127.0.0.1:{port}"\n'))
    with pytest.raises(ConfigError) as err:
        bind(cfg)
    assert "[web] listen" in str(err.value)
    taken.close()

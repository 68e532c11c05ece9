"""The smarthost client against a real aiosmtpd server with STARTTLS and AUTH."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from maildesk.config.credentials import Secret
from maildesk.errors import PermanentDeliveryError, TemporaryDeliveryError
from maildesk.outgoing.deliver import SmtpDeliverer
from tests.support.servers import free_port


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")], check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


class _Box:
    def __init__(self):
        self.got = []

    async def handle_DATA(self, server, session, envelope):
        self.got.append((session.authenticated, session.ssl is not None, envelope))
        return "250 OK"


def _auth(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"maildesk" and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls_server(cert):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    box = _Box()
    ctl = Controller(box, hostname="127.0.0.1", port=free_port(), tls_context=ctx, require_starttls=True,
                     authenticator=_auth, auth_required=True, auth_require_tls=True)
    ctl.start()
    yield ctl, box, cert[0]
    ctl.stop()


def test_starttls_and_auth(tls_server):
    ctl, box, ca = tls_server
    d = SmtpDeliverer("127.0.0.1", ctl.port, starttls=True, username="maildesk", password=Secret("value", "s3cret", "t"),
                      ca_file=str(ca))
    d.send("support@example.test", ["jane@customer.test"], b"Subject: hi\r\n\r\nbody\r\n")
    assert len(box.got) == 1 and box.got[0][0] and box.got[0][1]


def test_wrong_password_is_temporary_and_untrusted_cert_fails(tls_server):
    ctl, box, ca = tls_server
    bad = SmtpDeliverer("127.0.0.1", ctl.port, starttls=True, username="maildesk", password=Secret("value", "nope", "t"),
                        ca_file=str(ca))
    with pytest.raises(TemporaryDeliveryError, match="535"):
        bad.send("support@example.test", ["jane@customer.test"], b"Subject: hi\r\n\r\nbody\r\n")
    untrusted = SmtpDeliverer("127.0.0.1", ctl.port, starttls=True, username="maildesk", password=Secret("value", "s3cret", "t"))
    with pytest.raises(TemporaryDeliveryError, match=r"SSL|certificate"):
        untrusted.send("support@example.test", ["jane@customer.test"], b"Subject: hi\r\n\r\nbody\r\n")
    no_tls = SmtpDeliverer("127.0.0.1", ctl.port)
    with pytest.raises((PermanentDeliveryError, TemporaryDeliveryError), match=r"530|STARTTLS"):
        no_tls.send("support@example.test", ["jane@customer.test"], b"Subject: hi\r\n\r\nbody\r\n")
    assert box.got == []

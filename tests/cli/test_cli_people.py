"""`maildesk customers show` and `maildesk tickets attachment` on mail stored by the real pipeline."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime

from maildesk.storage.models import Rating
from tests.support.desk import deliver
from tests.support.mail import attachment, make_mail, message, multipart, text
from tests.support.servers import MaildeskProcess


def test_attachment_is_written_out_exactly_as_received(desk, config_path, tmp_path):
    pdf = b"%PDF-1.4\n" + os.urandom(50_000) + b"\n%%EOF\n"
    log = "line one\r\nline two, CRLF kept\r\n\x00binary\xff".encode("latin-1")
    deliver(desk, message(multipart("mixed", text("See the files.\n"), attachment(pdf, "scan.pdf", "application/pdf"),
                                    attachment(log, "vpn.log", "text/plain", cte="base64")), to="support@example.test"))
    md = MaildeskProcess(config_path)
    out = tmp_path / "out.pdf"
    res = md.cli("tickets", "attachment", "MD-1", "scan.pdf", "-o", str(out))
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(pdf).hexdigest()
    assert hashlib.sha256(pdf).hexdigest() in res.stderr.decode()
    assert md.cli("tickets", "attachment", "MD-1", "vpn.log").stdout == log
    res = md.cli("tickets", "attachment", "MD-1", check=False)  # two files: which one?
    assert res.returncode == 64 and "scan.pdf, vpn.log" in res.stderr.decode()
    res = md.cli("tickets", "attachment", "MD-1", "nope.txt", check=False)
    assert res.returncode != 0 and "no attachment named 'nope.txt'" in res.stderr.decode()


def test_customers_show(desk, config_path):
    deliver(desk, make_mail(subject="VPN drops", sender="Jane Customer <jane@customer.test>"))
    deliver(desk, make_mail(subject="Invoice", sender="Jane Customer <jane@customer.test>"))
    deliver(desk, make_mail(subject="Other person", sender="Bob <bob@customer.test>"))
    with desk.store.transaction() as s:
        s.add(Rating(ticket_id=1, score=4, comment="fine", at=datetime(2026, 11, 24, tzinfo=UTC)))
    md = MaildeskProcess(config_path)
    view = json.loads(md.cli("customers", "show", "JANE@customer.test", "--json").stdout)
    assert [t["ref"] for t in view["tickets"]] == ["MD-1", "MD-2"] and view["name"] == "Jane Customer"
    assert view["first_contact"] == "2026-11-23T09:00:00+00:00" and view["last_contact"] >= view["first_contact"]
    assert view["satisfaction"] == {"ratings": 1, "average": 4, "comments": [{"ref": "MD-1", "score": 4, "comment": "fine"}]}
    assert "MD-2" in md.cli("customers", "show", "jane@customer.test").stdout.decode()
    res = md.cli("customers", "show", "nobody@x.test", check=False)
    assert res.returncode != 0 and "no customer nobody@x.test" in res.stderr.decode()

"""The SLA page: open tickets at risk or breached, with the business time left."""

from __future__ import annotations

from tests.support import free_port, write_config
from tests.web.conftest import AGENTS, make_ticket

SLA = """
[select]
default = "std"

[hours.office]
timezone = "UTC"
mon-fri = "09:00-17:00"

[policy.std]
hours = "office"
warn_at = 0.5

[policy.std.first_response]
low = "8h"
normal = "4h"
high = "2h"
urgent = "1h"
"""


def test_sla_page_lists_at_risk_and_breached_with_business_time_left(tmp_path, clock):
    from starlette.testclient import TestClient

    from maildesk.config.load import load_config
    from maildesk.daemon.build import build_desk, sync_directory
    from maildesk.web.app import build_app
    from tests.web.conftest import sign_in

    path = write_config(tmp_path, port=free_port(), files={"agents.toml": AGENTS, "sla.toml": SLA},
                        extra='[web]\nlisten = "127.0.0.1:8025"\nbase_url = "http://desk.test"\n')
    desk = build_desk(load_config(path), clock=clock)  # Monday 2026-11-23 09:00 UTC
    desk.store.upgrade()
    sync_directory(desk)
    try:
        late = make_ticket(desk, team="alpha", subject="Old one")
        clock.advance(hours=3)  # 3 of its 4 business hours used: at risk (warn_at 0.5)
        fresh = make_ticket(desk, team="alpha", subject="Fresh one", sender="F <f@x.test>")
        other = make_ticket(desk, team="beta", subject="Beta late", sender="B <b@x.test>")
        with TestClient(build_app(desk), base_url="http://desk.test") as c:
            sign_in(c, desk, "ann@example.test")
            page = c.get("/sla").text
            assert f'href="/t/{late}"' in page and "1h 00m" in page  # 4h goal - 3h used, in business hours
            assert f'href="/t/{fresh}"' not in page and f'href="/t/{other}"' not in page
            clock.advance(hours=2)  # now past the goal: breached, overdue by one business hour
            page = c.get("/sla").text
            assert "breached" in page and "-1h 00m" in page
    finally:
        desk.store.dispose()

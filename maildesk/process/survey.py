"""Satisfaction survey by mail, no web server needed.

The "resolved" mail carries one ``mailto:`` link per score, each to a signed address
(``support+s<ticket>-<score>-<mac>@domain``): the HMAC covers the ticket AND the score,
so a token can be neither forged nor reused for another ticket or score. A reply to the
resolved mail whose new text starts with just a digit (1-5) counts too, with the rest
as the comment. The first rating is thanked once; a later one replaces it silently. A
bad rating notifies the team lead.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import quote

from maildesk.desk import Desk
from maildesk.outgoing.mailer import queue_mail
from maildesk.outgoing.notify import notify_agents
from maildesk.outgoing.tokens import ReplyToken, make_address
from maildesk.parse.quotes import new_text
from maildesk.parse.subjects import format_ref
from maildesk.storage.models import Rating, Ticket
from maildesk.storage.writer import Writer
from maildesk.tickets.state import record

__all__ = ["digit_rating", "record_rating", "survey_links"]

_LABELS = {"1-5": {1: "1 - very poor", 2: "2 - poor", 3: "3 - okay", 4: "4 - good", 5: "5 - excellent"},
           "good-bad": {5: "Good, I'm satisfied", 1: "Bad, I'm not satisfied"}}
_DIGIT = re.compile(r"^\s*([1-5])(?:\s*/\s*5)?(?:[\s.,:;!-]+(.*))?$", re.S)


def survey_links(desk: Desk, ticket: Ticket) -> list[dict] | None:
    scale = desk.config.workflow.survey
    if scale == "off":
        return None
    support = ticket.support_address or desk.config.mail.primary
    ref = format_ref(desk.config.mail.ticket_prefix, ticket.id)
    links = []
    for score, label in _LABELS[scale].items():
        address = make_address(desk.secret, support, ReplyToken("s", ticket.id, None, score))
        subject = quote(f"Rating {score} for {ref}")
        links.append({"score": score, "label": label, "link": f"mailto:{address}?subject={subject}"})
    return links


def digit_rating(text: str) -> tuple[int, str] | None:
    """``"4 thanks, quick answer"`` -> (4, "thanks, quick answer"); None if the reply is no rating."""
    m = _DIGIT.match(new_text(text) or "")
    if not m:
        return None
    return int(m.group(1)), (m.group(2) or "").strip()


def record_rating(w: Writer, desk: Desk, ticket: Ticket, score: int, comment: str, via: str, now: datetime) -> str:
    session = w.session
    rating = session.query(Rating).filter_by(ticket_id=ticket.id).one_or_none()
    first = rating is None
    if first:
        session.add(Rating(ticket_id=ticket.id, score=score, comment=comment[:4000], at=now))
    else:
        rating.score, rating.comment, rating.at = score, comment[:4000] or rating.comment, now
    record(w, ticket, "customer", "rating", now, score=score, comment=comment[:500], via=via, first=first)
    if first:
        queue_mail(w, desk.mail, ticket, kind="survey_thanks", template="survey_thanks",
                   to=[(ticket.requester.name, ticket.requester.address)], now=now, auto=True,
                   extra={"score": score}, record_kind="survey_thanks")
    if score <= desk.config.workflow.bad_rating_at_most and desk.directory is not None:
        lead = desk.directory.lead_for(ticket.team)
        if lead is not None:
            notify_agents(w, desk, ticket, "bad_rating", now, recipients=[lead], actor=f"rating {score}",
                          extra={"score": score, "comment": comment[:4000]})
    desk.wake("outbox")
    return f"rating {score} recorded on {format_ref(desk.config.mail.ticket_prefix, ticket.id)}" + ("" if first else " (replaces the earlier one)")


"""Mail content on pages: text is shown as text (autoescaped); HTML only after nh3 removed
everything but plain formatting (no scripts, styles, forms, images or event handlers)."""

from __future__ import annotations

import nh3
from markupsafe import Markup

__all__ = ["safe_html"]

_TAGS = {"a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr", "i", "li", "ol", "p", "pre",
         "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "u", "ul"}


def safe_html(html: str | None) -> Markup:
    """``html`` cleaned by nh3: allowed tags only, no attributes but a link's href (http,
    https, mailto), links opened without a referrer."""
    if not html:
        return Markup("")
    cleaned = nh3.clean(html, tags=_TAGS, attributes={"a": {"href"}}, url_schemes={"http", "https", "mailto"},
                        link_rel="noopener noreferrer nofollow", strip_comments=True)
    return Markup(cleaned)

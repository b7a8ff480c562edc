"""How far a model's malignancy call can be trusted, as the Findings summary, the Review panel and the Models
window show it (no Qt here): the headline, then each lesion type on its own line, each orange where its CI reaches
0.5, grey otherwise, so that a reader sees at a glance which of the AI's calls mean something."""

from __future__ import annotations

import html

WARN_COLOUR = "#ffb050"
QUIET_COLOUR = "#aaaaaa"


def _span(text: str, warn: bool) -> str:
    return f'<span style="color:{WARN_COLOUR if warn else QUIET_COLOUR}">{html.escape(text)}</span>'


def trust_html(trust) -> str:
    """Rich text of a model.registry.versions.MalignancyTrust, its lines joined by <br>."""
    lines = [_span(trust.headline + ("." if trust.by_type else ""), trust.warn)]
    lines += [_span(f"· {part.text}", part.warn) for part in trust.by_type]
    return "<br>".join(lines)

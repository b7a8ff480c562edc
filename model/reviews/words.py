"""How a review reads to a person: its time in the reader's time zone, its verdict and the AI score shown, in the
review panel, the review history and ``bcir reviews list``."""

from __future__ import annotations

from datetime import datetime

from model.reviews.records import Review


def local_time(created: str | None) -> str:
    """'2026-11-25 14:03' in the reader's time zone, from the store's UTC ISO time."""
    if not created:
        return ""
    try:
        return datetime.fromisoformat(created).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return created


def score_text(review: Review) -> str:
    """The AI score the reader saw with this review, as a percentage ('61%'): 'hidden' for a blinded own read."""
    if not review.ai_shown:
        return "hidden"
    return "" if review.ai_score_shown is None else f"{100 * review.ai_score_shown:.0f}%"


def verdict_text(review: Review) -> str:
    if review.verdict == "own":
        return "own read (blinded)"
    text = "agrees with AI" if review.verdict == "agree" else "disagrees with AI"
    return text + (" (after own read)" if review.phase == "unblinded" else "")

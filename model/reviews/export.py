"""The CSV export of the review log: every column of every review, one row each, oldest first. The GUI's export
and ``bcir reviews export`` both write it with :func:`export_csv`."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from model.fileio import atomic_write_bytes
from model.reviews.records import REVIEW_COLUMNS, Review

log = logging.getLogger(__name__)

CSV_COLUMNS = REVIEW_COLUMNS


def csv_row(review: Review) -> list:
    """The CSV cells of one review: the stored values, with an empty cell for no image or no AI score."""
    return [
        review.id, review.created, review.reader, review.patient_id, review.image_path or "", review.model_version,
        "" if review.ai_score_shown is None else repr(float(review.ai_score_shown)),
        int(review.ai_shown), review.verdict, review.birads, review.comment, int(review.blinded), review.phase,
    ]


def export_csv(store, path: str | Path, *, reader: str | None = None) -> int:
    """Write the reviews of ``store`` (a ReviewStore; only ``reader``'s when given) to ``path`` atomically, with a
    header row, ids ascending; returns the row count."""
    reviews = store.all(reader=reader)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for review in reviews:
        writer.writerow(csv_row(review))
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))
    log.info("exported %d reviews to CSV", len(reviews))
    return len(reviews)

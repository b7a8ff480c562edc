"""Reads in and out of the store: the export (CSV or JSON), the import of reads from a CSV (a RIS, a reader study),
and the cases of a study folder.

The import CSV has one row per breast read; a read is the two rows (L and R) of one reader on one case, and an
arbitration the rows of role ``arbitration``. Columns (names as in the header; case, blanks and ``_`` vs space
do not matter; ``,``, ``;`` or tab):

=================  ==========================================================================================
case_id            the case, as the store knows it (required)
reader             the reader's code (required; the reader must be on the site's list)
side               L or R (required)
outcome            routine, assessment, technical or clinical (required)
score              on the scale below (required for a read)
scale              birads or rcr (default birads)
density            a, b, c or d (optional)
technical_view     the view to retake, e.g. LMLO (technical recall only)
technical_reason   why (technical recall only)
opened_at          when the reader opened the case, ISO 8601 with a UTC offset (default: committed_at)
committed_at       when the read was committed in the other system (default: the time of the import)
role               ``arbitration`` for an arbitration's rows; empty or ``read`` for a read
reason             the arbitration's reason, or the read's note
=================  ==========================================================================================

Rows are read in file order; each read goes through the store's protocol like any other (a second reader, an
arbitration only where one is due), so reads must come in the order they were made. A bad row, or a read the
protocol refuses, is listed with its rows and its one-line reason; the others are imported.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from model.data.csv_input import CsvError, DELIMITERS, header_names, read_table, read_text
from model.errors import BcirError, ReadRefused
from model.fileio import atomic_write_bytes
from model.reading.reads import Arbitration, BreastRead, Read
from model.reading.db import now
from model.reading.store import EXPORT_COLUMNS, ReadStore, not_a_reader
from model.reading.vocab import SIDES

REQUIRED = ("case id", "reader", "side", "outcome")


def export_text(rows: list[dict], fmt: str = "csv") -> str:
    """The export as CSV (:data:`EXPORT_COLUMNS`, one row per breast) or JSON."""
    if fmt == "json":
        return json.dumps({"columns": list(EXPORT_COLUMNS), "rows": rows}, indent=1) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(EXPORT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("true" if v is True else "false" if v is False else v) for k, v in row.items()})
    return out.getvalue()


def write_export(store: ReadStore, path: Path, fmt: str = "csv") -> int:
    """Write the store's export to ``path`` atomically; the number of rows."""
    rows = store.export()
    atomic_write_bytes(path, export_text(rows, fmt).encode("utf-8"))
    return len(rows)


@dataclass
class ImportResult:
    reads: int = 0
    arbitrations: int = 0
    cases_added: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (rows, one-line reason)

    def to_json(self) -> dict:
        return {"reads": self.reads, "arbitrations": self.arbitrations, "cases_added": self.cases_added,
                "refused": [{"rows": r, "reason": why} for r, why in self.refused]}


def _delimiter(path: Path) -> str:
    text = read_text(path, limit=64 * 1024)
    for delimiter in DELIMITERS:
        names = header_names(text, delimiter)
        if all(n in names for n in REQUIRED):
            return delimiter
    raise CsvError(path, f"no header with the columns {', '.join(c.replace(' ', '_') for c in REQUIRED)}")


def _group(rows) -> list[tuple[str, list]]:
    """Consecutive rows of one reader on one case (and one role) make one read or arbitration."""
    groups: list[tuple[tuple, list]] = []
    for row in rows:
        key = (row.get("case id"), row.get("reader").upper(), (row.get("role") or "read").lower())
        if groups and groups[-1][0] == key and len(groups[-1][1]) < 2 \
                and row.get("side").upper() not in {r.get("side").upper() for r in groups[-1][1]}:
            groups[-1][1].append(row)
        else:
            groups.append((key, [row]))
    return [(", ".join(str(r.number) for r in members), members) for _, members in groups]


def _breast(row) -> BreastRead:
    return BreastRead(side=row.get("side").upper(), outcome=row.get("outcome").lower(), score=row.get("score").upper(),
                      scale=(row.get("scale") or "birads").lower(), density=row.get("density").lower() or None,
                      technical_view=row.get("technical view").upper() or None,
                      technical_reason=row.get("technical reason") or None)


def import_reads(store: ReadStore, path: Path, *, add_cases: bool = False) -> ImportResult:
    """Import the reads and arbitrations of a CSV (columns above). ``add_cases``: put a case the store does not
    know on its list first, rather than refusing its reads. A CsvError when the file cannot be read at all."""
    path = Path(path)
    table = read_table(path, _delimiter(path))
    result = ImportResult()
    known = set(store.cases())
    readers = {r.code for r in store.readers()}
    for numbers, rows in _group(table.rows):
        where = f"row {numbers}" if "," not in numbers else f"rows {numbers}"
        try:
            if any(r.problem for r in rows):
                raise ReadRefused(next(r.problem for r in rows if r.problem))
            first = rows[0]
            missing = [c.replace(" ", "_") for c in REQUIRED if not first.get(c)]
            if missing:
                raise ReadRefused(f"{', '.join(missing)} missing")
            case, reader = first.get("case id"), first.get("reader").upper()
            sides = sorted(r.get("side").upper() for r in rows)
            if reader not in readers:
                raise not_a_reader(reader)
            committed = first.get("committed at") or None
            if (first.get("role") or "read").lower() == "arbitration":
                item = Arbitration(case, reader, {r.get("side").upper(): r.get("outcome").lower() for r in rows},
                                   first.get("reason") or "imported")
            elif sides != list(SIDES):
                raise ReadRefused(f"a read needs one row for each breast (L and R), not {', '.join(sides) or 'none'}")
            else:
                item = Read(case, reader, tuple(_breast(r) for r in rows), first.get("opened at") or committed or now(),
                            None, note=first.get("reason") or "")
            if add_cases and case not in known:  # only for a read or arbitration whose fields are good
                if store.add_case(case):
                    result.cases_added += 1
                known.add(case)
            if isinstance(item, Arbitration):
                store.arbitrate(item, decided_elsewhere=committed)
                result.arbitrations += 1
            else:
                store.commit(item, committed_elsewhere=committed)
                result.reads += 1
        except (ReadRefused, CsvError) as exc:
            result.refused.append((where, " ".join(str(exc).split())))
        except BcirError as exc:  # the database itself failed: what was imported so far stays, the rest is not tried
            result.refused.append((where, " ".join(str(exc).split()) + " (the import stopped here)"))
            break
    return result


def image_key(image, root: str | Path) -> str:
    """An image as a case and a mark name it: "LCC:relative/path" (the side and view, then the path in the folder)."""
    path = Path(image.path)
    try:
        path = path.relative_to(root)
    except ValueError:
        pass  # a file opened on its own: its whole path
    return f"{image.laterality or '?'}{image.view or '?'}:{path.as_posix()}"


def case_images(index, case_id: str) -> dict[str, Path]:
    """The images of one case in a study index, by the keys its marks use (:func:`image_key`) -> file path; {} when
    the index does not hold the case."""
    return {image_key(i, index.root): Path(i.path) for i in index.patients().get(case_id, [])}


def cases_of_index(index) -> list[tuple[str, list[str], dict[str, bool]]]:
    """The cases of a study index as the store takes them: (case id, image keys, known cancer per breast). A case
    is a patient's screening views as the index groups them; its id is the patient ID the folder uses (the store is
    the site's own database, as its PACS is). Cancer per breast is known where the folder's labels cover the
    patient: any malignant abnormality on that side's images."""
    out = []
    for patient, images in sorted(index.patients().items()):
        keys = sorted(image_key(i, index.root) for i in images)
        truth: dict[str, bool] = {}
        for side in SIDES:
            on_side = [i for i in images if i.laterality == side]
            if on_side and all(i.gt_known or i.abnormalities for i in on_side) and \
                    not any(a.malignant is None for i in on_side for a in i.abnormalities):
                truth[side] = any(a.malignant for i in on_side for a in i.abnormalities)
        out.append((patient, keys, truth))
    return out


def add_cases_of_index(store: ReadStore, index, source: str) -> tuple[int, int]:
    """Put an index's cases on the store's reading list, with their known outcome per breast (never shown in
    reading mode; the statistics read it); (added, already there)."""
    added = present = 0
    for case, images, truth in cases_of_index(index):
        if store.add_case(case, images):
            added += 1
            for side, cancer in truth.items():
                store.record_truth(case, side, cancer, source)
        else:
            present += 1
    return added, present


def add_cases_of_folder(store: ReadStore, root: Path) -> tuple[int, int]:
    """:func:`add_cases_of_index` of the study folder ``root``."""
    from model.data.study_index import build_index

    return add_cases_of_index(store, build_index(root, workers=1), f"labels of {Path(root).name}")


__all__ = ["ImportResult", "add_cases_of_folder", "add_cases_of_index", "case_images", "cases_of_index", "export_text", "image_key",
           "import_reads", "write_export"]

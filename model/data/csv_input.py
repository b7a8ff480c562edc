"""Reading the CSVs a dataset brings, with one set of rules for all of them.

The CBIS-DDSM description CSVs (:mod:`model.data.cbis_ddsm`) and a site's labels
CSV (:mod:`model.data.labelled_folder`) are read here, and so are the retriever's
``metadata.csv`` and Kaggle's ``dicom_info.csv``. The rules:

* A CSV is recognised by its header row (:mod:`model.data.csv_kinds`), never by its name. The delimiter is
  the one of ``,``, ``;`` and tab that splits the header into the expected
  names (Excel writes ``;`` in many locales, tab for "Unicode text").
* A CSV is either read or unreadable with a one-line reason
  (:class:`CsvError`): empty, binary, larger than :data:`MAX_CSV_BYTES`, a
  quote that is never closed or closes mid-field, a quoted field that runs
  over several lines (an unbalanced quote: every row after it would be lost
  or shifted), a field over the ``csv`` module's 131,072
  characters, or a header that looks like one of ours but lacks a column the
  truth depends on.
* Cells are stripped (CBIS-DDSM ends a row with a newline inside the last
  quoted path); blank rows are passed over. A row with more values than the
  header has keeps a ``problem`` and is not used: its values have shifted into
  other columns, its image and patient too. A row with fewer values has its
  last cells empty (hand-made CSVs leave optional ones out); whatever a reader
  needed from them is reported by that reader.
* A row that repeats another (the same key and values, in any CSV of the
  folder) is left out with a note; rows with the same key but other values all
  keep a problem, since which one is right is unknown (:func:`drop_repeated_rows`).
* A path written in a CSV must resolve inside the dataset folder
  (:func:`resolve_inside`), or it is not used and the row says why; and only
  files the folder scan listed are ever read.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from model.errors import DataError

MAX_CSV_BYTES = 64 * 1024 * 1024  # the real CBIS-DDSM CSVs are about 1 MB, Kaggle's dicom_info.csv about 10 MB
FIELD_LIMIT = csv.field_size_limit()  # 131,072: the csv module's (process-wide) limit, never raised here
HEADER_BYTES = 64 * 1024  # what is read to recognise a CSV
DELIMITERS = (",", ";", "\t")


class CsvError(DataError):
    """A CSV that cannot be read. ``reason`` is one line without the path; ``str()`` adds the file name."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{self.path.name}: {self.reason}")


class CsvPathError(DataError):
    """A path in a CSV that leads outside the dataset folder (or is no path at all). ``str()`` is the reason."""

    def __init__(self, reason: str):
        self.reason = " ".join(str(reason).split())
        super().__init__(self.reason)


def shown(value: str, limit: int = 60) -> str:
    """A CSV value quoted for a one-line reason: control characters escaped, long values cut."""
    text = value if len(value) <= limit else value[:limit] + "..."
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return f"'{text}'"


def column_name(name: str) -> str:
    """A header name as compared: case, surrounding blanks and quotes, ``_`` vs space do not matter."""
    return " ".join(name.strip().strip('"').strip().lower().replace("_", " ").split())


# ---------------------------------------------------------------------------
# paths


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def resolve_inside(root: Path, base: Path, ref: str, *, what: str = "path") -> Path:
    """The file a CSV names: ``ref`` relative to ``base``, normalised; it must lie inside ``root``.

    ``..`` that climbs out and an absolute path elsewhere are refused with
    :class:`CsvPathError` (``what`` names the column in the reason). The path is
    not opened here: callers use only the files the folder scan listed, so a
    link inside the folder counts as the scan counts it.
    """
    if "\0" in ref:
        raise CsvPathError(f"{what} {shown(ref)} is not a path")
    root_text = os.path.normpath(os.path.abspath(root))
    joined = os.path.normpath(os.path.join(os.path.abspath(base), ref.replace("\\", "/")))
    if not _within(joined, root_text):
        raise CsvPathError(f"{what} {shown(ref)} leads outside the dataset folder")
    return Path(joined)


# ---------------------------------------------------------------------------
# reading


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def _looks_binary(text: str) -> bool:
    sample = text[:8192]
    odd = sum(1 for c in sample if c == "\ufffd" or (ord(c) < 32 and c not in "\t\n\r\f"))
    return odd > max(8, len(sample) // 20)


def _open_regular(path: Path) -> tuple[int, object]:
    """(size, open binary file) of a regular file; never blocks on a FIFO or a device."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise CsvError(path, f"cannot be opened ({exc.strerror or type(exc).__name__})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise CsvError(path, "not a regular file")
    return info.st_size, os.fdopen(fd, "rb")


def read_text(path: Path, *, limit: int | None = None) -> str:
    """The text of a CSV (``limit`` bytes at most, for recognising it). Raises CsvError: empty, binary, too large."""
    size, f = _open_regular(path)
    with f:
        if limit is None and size > MAX_CSV_BYTES:
            raise CsvError(path, f"larger than {MAX_CSV_BYTES // (1024 * 1024)} MB ({size / 1e6:.0f} MB)")
        try:
            # read(n) allocates n bytes up front: ask for what the file holds, never for the limit
            data = f.read(min(size, limit if limit is not None else MAX_CSV_BYTES) + 1)
        except OSError as exc:
            raise CsvError(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    if limit is None and len(data) > MAX_CSV_BYTES:
        raise CsvError(path, f"larger than {MAX_CSV_BYTES // (1024 * 1024)} MB")
    if not data.strip():
        raise CsvError(path, "empty file" if not data else "no text, only blanks")
    text = _decode(data)
    if _looks_binary(text):
        raise CsvError(path, "binary content, not a text CSV")
    return text


def header_names(text: str, delimiter: str) -> list[str]:
    """The first non-blank line split on ``delimiter``, names as compared (:func:`column_name`).

    Split plainly, ignoring quotes, so that one stray quote in the header does
    not hide what the CSV is.
    """
    for line in io.StringIO(text, newline=""):
        names = [column_name(n) for n in line.rstrip("\r\n").split(delimiter)]
        if any(names):
            return names
    return []


@dataclass(frozen=True)
class CsvRow:
    number: int  # data row number: 1 = the first row under the header (blank rows not counted)
    line: int  # the line of the file where the row starts
    cells: dict[str, str]  # column name (as compared) -> stripped value; absent columns are absent
    problem: str | None = None  # more values than the header has: the row cannot be used

    def get(self, column: str) -> str:
        return self.cells.get(column, "")


@dataclass(frozen=True)
class CsvTable:
    path: Path
    delimiter: str
    columns: tuple[str, ...]  # as compared
    rows: tuple[CsvRow, ...]


def read_table(path: Path, delimiter: str = ",") -> CsvTable:
    """All rows of a CSV whose header row was recognised. Raises CsvError when the file cannot be read as a whole."""
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[CsvRow] = []
    line = 1
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            for cell in record:
                inner = cell.strip()
                if "\n" in inner or "\r" in inner:
                    lines = inner.count("\n") + 1 if "\n" in inner else inner.count("\r") + 1
                    raise CsvError(path, f"line {start}: a quoted field runs over {lines} lines "
                                         "(an unbalanced quote?); the rows after it cannot be trusted")
            if header is None:
                header = [column_name(c) for c in record]
                if header != header_names(text, delimiter):
                    raise CsvError(path, f"line {start}: the header row's quotes are broken")
                continue
            cells = {}
            for name, cell in zip(header, record):
                if name and name not in cells:
                    cells[name] = cell.strip()
            problem = None  # fewer values: the cells left out are empty, and each reader says which it needed
            extra = [c for c in record[len(header):] if c.strip()]
            if extra:
                problem = (f"{len(header) + len(extra)} values where the header has {len(header)} columns (a value with "
                           f"an unquoted {_delimiter_name(delimiter)}?); the row is not used")
            rows.append(CsvRow(len(rows) + 1, start, cells, problem))
    except csv.Error as exc:
        message = str(exc)
        if "field larger than field limit" in message:
            message = f"a field longer than {FIELD_LIMIT} characters"
        elif "expected after" in message:
            message = "a quote closes in the middle of a field (an unbalanced quote?)"
        elif "unexpected end of data" in message:
            message = "a quoted field is never closed (an unbalanced quote?)"
        raise CsvError(path, f"line {line}: {message}") from None  # the line where the broken row starts
    if header is None:
        raise CsvError(path, "no header row")
    return CsvTable(path, delimiter, tuple(header), tuple(rows))


def _delimiter_name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab"}.get(delimiter, repr(delimiter))


# ---------------------------------------------------------------------------
# rows that repeat each other

# A reader's row: a frozen dataclass with ``csv_name``, ``csv_path``, ``row`` (its number) and ``problem``; its
# other fields are the values it gives.
Row = TypeVar("Row")


def with_problem(row: Row, problem: str) -> Row:
    """``row`` with ``problem`` added after the problems it has."""
    return replace(row, problem=f"{row.problem}; {problem}" if row.problem else problem)


def where(other, row) -> str:
    """``other`` as a reason on ``row`` names it: its row number, and its CSV's name when that is another CSV."""
    return f"row {other.row}" if other.csv_path == row.csv_path else f"{other.csv_name} row {other.row}"


def _values(row):
    return replace(row, csv_name="", row=0, csv_path="", problem=None)


def drop_repeated_rows(rows: list[Row], key: Callable[[Row], Hashable | None],
                       conflict: Callable[[Row, Row], str]) -> tuple[list[Row], list[tuple[str, str]]]:
    """(rows kept, notes) over the rows of one kind from every CSV of a folder.

    A row that repeats an earlier row with the same ``key`` (same values, in any
    CSV) is left out with a note (csv path, reason). Rows with the same key but
    other values all keep a problem, ``conflict(other, row)``: which one is right
    is unknown. A row whose key is None is kept as it is.
    """
    first: dict[Hashable, int] = {}
    kept: list[Row] = []
    notes: list[tuple[str, str]] = []
    for row in rows:
        row_key = key(row)
        if row_key is None or row_key not in first:
            if row_key is not None:
                first[row_key] = len(kept)
            kept.append(row)
            continue
        earlier = kept[first[row_key]]
        if _values(earlier) == _values(row):
            notes.append((row.csv_path, f"row {row.row}: repeats {where(earlier, row)}; left out"))
            continue
        kept[first[row_key]] = with_problem(earlier, conflict(row, earlier))
        kept.append(with_problem(row, conflict(earlier, row)))
    return kept, notes


__all__ = [
    "DELIMITERS", "FIELD_LIMIT", "MAX_CSV_BYTES", "CsvError", "CsvPathError", "CsvRow", "CsvTable", "column_name",
    "drop_repeated_rows", "header_names", "read_table", "read_text", "resolve_inside", "shown", "where", "with_problem",
]

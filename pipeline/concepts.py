"""The concept table: the same topic's article title in each language (concepts.tsv).

Tab-separated with header `concept qid lang title page_id rev_id chars`, one row per (concept, language);
qid, page_id, rev_id and chars may be empty. It seeds a crawl, supplies the langlinks of dump pages, and
tells the local MediaWiki family which `[[xx:Title]]` links to add when importing.

    table = read_concepts("../shared/corpus/wikipedia/concepts.tsv")
    table.titles("uk")              # {title: concept}
    table.concept_of("uk", "1919")  # '1919 (year)'
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wikimix.errors import WikimixError

COLUMNS = ("concept", "qid", "lang", "title", "page_id", "rev_id", "chars")


class ConceptTableError(WikimixError):
    """A concept table that cannot be read (missing file, bad header, bad row)."""


@dataclass(frozen=True)
class Concept:
    concept: str
    lang: str
    title: str
    qid: str = ""
    page_id: int | None = None
    rev_id: int | None = None
    chars: int | None = None


def normalize_title(title: str) -> str:
    """MediaWiki's default title form: underscores as spaces, single spaces, first letter upper case."""
    title = " ".join(title.replace("_", " ").split())
    return title[:1].upper() + title[1:]


@dataclass
class ConceptTable:
    rows: list[Concept]

    def __post_init__(self) -> None:
        self._by_key: dict[tuple[str, str], Concept] = {}
        self._by_concept: dict[str, list[Concept]] = defaultdict(list)  # lookups stay O(languages)
        for row in self.rows:
            self._by_concept[row.concept].append(row)
            key = (row.lang, normalize_title(row.title))
            if key in self._by_key and self._by_key[key].concept != row.concept:
                raise ConceptTableError(
                    f"title {row.title!r} ({row.lang}) belongs to two concepts: "
                    f"{self._by_key[key].concept!r} and {row.concept!r}"
                )
            self._by_key[key] = row

    def langs(self) -> list[str]:
        return sorted({r.lang for r in self.rows})

    def concepts(self) -> list[str]:
        return sorted({r.concept for r in self.rows})

    def titles(self, lang: str) -> dict[str, str]:
        """{title: concept} of one language."""
        return {r.title: r.concept for r in self.rows if r.lang == lang}

    def row(self, lang: str, title: str) -> Concept | None:
        return self._by_key.get((lang, normalize_title(title)))

    def concept_of(self, lang: str, title: str) -> str | None:
        row = self.row(lang, title)
        return row.concept if row else None

    def group(self, concept: str) -> dict[str, Concept]:
        """{lang: row} of one concept."""
        return {r.lang: r for r in self._by_concept.get(concept, ())}

    def langlinks(self, lang: str, title: str) -> list[tuple[str, str]]:
        """(lang, title) of the same concept in the other languages, sorted by language."""
        row = self.row(lang, title)
        if row is None:
            return []
        return sorted((r.lang, r.title) for r in self._by_concept[row.concept] if r.lang != lang)

    def subset(self, langs: Iterable[str] | None) -> ConceptTable:
        if langs is None:
            return self
        keep = set(langs)
        return ConceptTable([r for r in self.rows if r.lang in keep])


def _int_or_none(value: str, where: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConceptTableError(f"{where}: expected an integer, got {value!r}") from None


def read_concepts(path: str | Path) -> ConceptTable:
    """Read concepts.tsv; a one-line error for a missing file, a bad header or a bad row."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConceptTableError(f"concept table not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConceptTableError(f"cannot read concept table {path}: {exc}") from None
    reader = csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None or [h.strip() for h in header[: len(COLUMNS)]] != list(COLUMNS):
        raise ConceptTableError(f"{path}: header must be {' '.join(COLUMNS)!r} (tab-separated), got {header}")
    rows = []
    for lineno, fields in enumerate(reader, start=2):
        if not any(f.strip() for f in fields):
            continue
        if len(fields) < 4:
            raise ConceptTableError(f"{path}:{lineno}: expected {len(COLUMNS)} tab-separated fields")
        fields = fields + [""] * (len(COLUMNS) - len(fields))
        concept, qid, lang, title = (f.strip() for f in fields[:4])
        if not concept or not lang or not title:
            raise ConceptTableError(f"{path}:{lineno}: concept, lang and title must not be empty")
        where = f"{path}:{lineno}"
        rows.append(
            Concept(
                concept=concept,
                lang=lang,
                title=title,
                qid=qid,
                page_id=_int_or_none(fields[4], where),
                rev_id=_int_or_none(fields[5], where),
                chars=_int_or_none(fields[6], where),
            )
        )
    if not rows:
        raise ConceptTableError(f"{path}: no concepts")
    return ConceptTable(rows)

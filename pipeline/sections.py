"""Wikitext to rows of the `sections` table: section tree, plain-text paragraphs, alignment anchors.

    from pipeline.sections import sections_from_page
    rows = sections_from_page(page)     # page: a `pages` row (dict); one row per paragraph

Parsing uses mwparserfromhell. A section starts at each heading (section 0 is the lead, level 1); its
parent is the nearest earlier section with a smaller level (-1 for the lead and top sections). The text
drops templates, references, tables, galleries, files, categories, interlanguage links, comments and
magic words, keeps the visible text of links and formatting, and splits on blank lines into paragraphs
(a list stays one paragraph, one item per line). Sections without any paragraph produce no rows, but
keep their index so section numbers match the page's headings.

Per paragraph the anchors for cross-language alignment: the wikilink targets (normalised titles), the
numbers (any script's digits mapped to ASCII; thousands separators dropped, a decimal comma written as
a point) and the years (four-digit numbers 1000..2100).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import mwparserfromhell
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)

from pipeline.concepts import normalize_title

# Tags whose content is not running prose.
DROP_TAGS = {
    "ref", "references", "table", "gallery", "math", "chem", "ce", "syntaxhighlight", "source", "score",
    "timeline", "imagemap", "templatedata", "graph", "mapframe", "maplink", "includeonly", "noinclude",
    "hiero", "style", "script", "categorytree", "inputbox", "indicator", "templatestyles", "section",
}  # fmt: skip
BREAK_TAGS = {"br", "hr"}
# Namespace names (lower case) of files and categories in the languages wikimix meets most; links into
# them are page furniture, not prose. Files are also recognised by their extension.
FILE_CATEGORY_PREFIXES = {
    "file", "image", "media", "category",
    "datei", "bild", "kategorie",  # de
    "archivo", "imagen", "categoría",  # es
    "fichier", "catégorie",  # fr
    "файл", "изображение", "категория", "категорія", "зображення", "медіа", "медиа",  # ru, uk
    "ファイル", "画像", "カテゴリ", "メディア",  # ja
    "tập tin", "hình", "thể loại", "tệp",  # vi
    "պատկեր", "կատեգորիա", "նիշք", "մեդիա",  # hy
    "चित्र", "वर्ग", "संचिका", "मिडिया",  # mr
    "文件", "图像", "分类", "檔案", "分類",  # zh
    "ملف", "صورة", "تصنيف",  # ar
    "plik", "kategoria", "bestand", "categorie", "arquivo", "categoria", "kategori", "dosya",
}  # fmt: skip
FILE_EXTENSIONS = re.compile(
    r"\.(jpe?g|png|gif|svg|tiff?|webp|ogg|ogv|oga|webm|mp3|wav|flac|pdf|djvu|mid)$", re.I
)
LANG_PREFIX = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
MAGIC_WORD = re.compile(r"__[A-ZА-ЯЁ]+__")
REDIRECT = re.compile(r"^\s*#[^\s\[]+\s*:?\s*\[\[", re.UNICODE)
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
EMPTY_BRACKETS = re.compile(r"[(（]\s*[,;:、，]?\s*[)）]")
SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.;:!?)\]、。，])")
# A number: digits (any script) with optional grouping by '.', ',', or a no-break/thin space.
NUMBER = re.compile(r"\d+(?:[.,\u00a0\u202f\u2009]\d+)*")
# '17 098 246' with plain spaces: grouping only when the later groups have exactly three digits.
SPACE_GROUPED = re.compile(r"(?<![\d.,])\d{1,3}(?: \d{3})+(?![\d.,]?\d)")


COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
REF = re.compile(r"<ref\b[^>]*/>|<ref\b[^>]*>.*?</ref\s*>", re.S | re.I)
BRACES = re.compile(r"\{\{|\}\}")


def _drop_templates(text: str) -> str:
    """Remove balanced {{...}} spans (templates, parser functions, arguments) without parsing them."""
    out, depth, start, opened = [], 0, 0, 0
    for m in BRACES.finditer(text):
        if m.group(0) == "{{":
            if depth == 0:
                out.append(text[start : m.start()])
                opened = m.start()
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                start = m.end()
    out.append(text[opened:] if depth > 0 else text[start:])  # an unclosed {{ stays text
    return "".join(out)


def _drop_tables(text: str) -> str:
    """Remove {| ... |} tables (line-based, nested tables included)."""
    out, depth = [], 0
    for line in text.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith("{|"):
            depth += 1
        elif depth and stripped.startswith("|}"):
            depth -= 1
        elif not depth:
            out.append(line)
    return "\n".join(out)


def prestrip(wikitext: str) -> str:
    """Drop comments, references, templates and tables before parsing: they never reach the text, and
    building their node trees is most of mwparserfromhell's time on real articles."""
    return _drop_tables(_drop_templates(REF.sub("", COMMENT.sub("", wikitext))))


@dataclass
class _Rendered:
    """Plain text of a node list and the wikilink targets it contains, by character offset."""

    text: list[str] = field(default_factory=list)
    links: list[tuple[int, str]] = field(default_factory=list)
    length: int = 0

    def add(self, s: str) -> None:
        if s:
            self.text.append(s)
            self.length += len(s)


def _is_furniture_link(target: str) -> bool:
    """File, category and interlanguage links: no prose, no alignment anchor."""
    if ":" not in target:
        return False
    prefix = target.split(":", 1)[0].strip().lower()
    if prefix in FILE_CATEGORY_PREFIXES:
        return True
    rest = target.split(":", 1)[1].strip()
    if FILE_EXTENSIONS.search(rest.split("|", 1)[0].strip()):
        return True
    return bool(LANG_PREFIX.match(prefix))  # [[de:Titel]]: an interlanguage link


def link_target(title: str) -> str:
    """A wikilink target as a normalised title: no fragment, no leading colon, first letter upper case."""
    title = title.strip().lstrip(":").split("#", 1)[0]
    return normalize_title(title) if title.strip() else ""


def _render(nodes, out: _Rendered) -> None:
    for node in nodes:
        if isinstance(node, Text):
            out.add(MAGIC_WORD.sub("", str(node.value)))
        elif isinstance(node, Wikilink):
            raw_target = str(node.title)
            if raw_target.strip().startswith(":"):
                raw_target = raw_target.strip()[1:]  # [[:Category:X]] is a visible link to the page
                furniture = False
            else:
                furniture = _is_furniture_link(raw_target)
            if furniture:
                continue
            target = link_target(raw_target)
            if target:
                out.links.append((out.length, target))
            if node.text is not None:
                _render(node.text.nodes, out)
            else:
                out.add(raw_target.strip())
        elif isinstance(node, Tag):
            tag = str(node.tag).strip().lower()
            if tag in DROP_TAGS:
                continue
            if tag in BREAK_TAGS:
                out.add("\n\n" if tag == "hr" else " ")
            elif tag in ("li", "dt", "dd"):
                out.add("")  # list markers: the item text follows as plain text
            elif node.contents is not None:
                _render(node.contents.nodes, out)
        elif isinstance(node, ExternalLink):
            if node.title is not None:
                _render(node.title.nodes, out)
        elif isinstance(node, HTMLEntity):
            out.add(node.normalize())
        elif isinstance(node, Heading):
            _render(node.title.nodes, out)
        elif isinstance(node, Template | Argument | Comment):
            continue
        else:
            out.add(str(node))


def _clean_paragraph(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.split("\n")]
    text = "\n".join(line for line in lines if any(ch.isalnum() for ch in line))
    text = EMPTY_BRACKETS.sub("", text)
    text = SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return "\n".join(" ".join(line.split()) for line in text.split("\n") if line.strip())


def _ascii_digits(s: str) -> str:
    return "".join(str(unicodedata.digit(c)) if c.isdigit() else c for c in s)


def numbers_in(text: str) -> list[str]:
    """Numbers in order of appearance, ASCII digits; '1,234' and '1 234' -> '1234', '3,5' -> '3.5'."""
    found = []
    text = SPACE_GROUPED.sub(lambda m: m.group(0).replace(" ", "\u202f"), text)
    for m in NUMBER.finditer(text):
        raw = _ascii_digits(m.group(0))
        groups = re.split(r"[.,\u00a0\u202f\u2009]", raw)
        if not all(g.isascii() and g.isdigit() for g in groups):
            continue  # digits with no decimal value (e.g. superscripts)
        seps = set(re.findall(r"[.,\u00a0\u202f\u2009]", raw))
        if len(groups) == 1:
            found.append(raw)
        elif len(seps) == 1 and (len(groups) > 2 or seps <= {"\u00a0", "\u202f", "\u2009"}):
            found.append("".join(groups))  # 1,234,567 or 1 234: grouping only
        elif len(groups) == 2:
            found.append(f"{groups[0]}.{groups[1]}")  # 3.5 or 3,5: a decimal
        else:
            # 1,234.5 or 1.234,5: the last separator is the decimal one
            found.append("".join(groups[:-1]) + "." + groups[-1])
    return found


def years_in(numbers: list[str]) -> list[int]:
    return [int(n) for n in numbers if len(n) == 4 and n.isdigit() and 1000 <= int(n) <= 2100]


def _split_sections(code) -> list[tuple[int, str, list]]:
    """(level, heading wikicode nodes or None, body nodes) for the lead and each heading."""
    sections: list[tuple[int, object, list]] = [(1, None, [])]
    for node in code.nodes:
        if isinstance(node, Heading):
            sections.append((int(node.level), node, []))
        else:
            sections[-1][2].append(node)
    return sections


def sections_from_page(page: dict) -> list[dict]:
    """Rows of the `sections` table for one `pages` row (keys wiki, lang, page_id, rev_id, wikitext,
    and optionally concept and title). Redirects and empty pages give no rows."""
    wikitext = page.get("wikitext") or ""
    if not wikitext.strip() or REDIRECT.match(wikitext):
        return []
    code = mwparserfromhell.parse(prestrip(wikitext))
    base = {
        "wiki": page["wiki"],
        "lang": page["lang"],
        "page_id": int(page["page_id"]),
        "rev_id": int(page["rev_id"]),
        "concept": page.get("concept"),
        "title": page.get("title"),
    }
    rows: list[dict] = []
    stack: list[tuple[int, int]] = []  # (level, section_idx) of open sections, for parents
    for section_idx, (level, heading_node, body) in enumerate(_split_sections(code)):
        if heading_node is None:
            heading, parent = "", -1
        else:
            rendered = _Rendered()
            _render(heading_node.title.nodes, rendered)
            heading = " ".join("".join(rendered.text).split())
            while stack and stack[-1][0] >= level:
                stack.pop()
            parent = stack[-1][1] if stack else -1
            stack.append((level, section_idx))
        rendered = _Rendered()
        _render(body, rendered)
        text = "".join(rendered.text)
        starts = [0] + [m.end() for m in PARAGRAPH_BREAK.finditer(text)]
        ends = [m.start() for m in PARAGRAPH_BREAK.finditer(text)] + [len(text)]
        paragraph_idx = 0
        for start, end in zip(starts, ends, strict=True):
            para = _clean_paragraph(text[start:end])
            if not any(ch.isalnum() for ch in para):
                continue
            numbers = numbers_in(para)
            rows.append(
                {
                    **base,
                    "section_idx": section_idx,
                    "paragraph_idx": paragraph_idx,
                    "level": level,
                    "heading": heading,
                    "parent": parent,
                    "text": para,
                    "links": [t for off, t in rendered.links if start <= off <= end],
                    "numbers": numbers,
                    "years": years_in(numbers),
                }
            )
            paragraph_idx += 1
    return rows

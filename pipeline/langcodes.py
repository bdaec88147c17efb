"""One language-code system for every comparison: ISO 639-3, with macrolanguages.

Codes arrive in four spellings: SIB-200/FLORES `xxx_Scrp` (ISO 639-3 + ISO 15924 script), heliport's
ISO 639-3 labels (some at the macrolanguage level: `ara`, `nep`, `fas`, `sqi`, `aze`, `msa`, `hbs`),
lid.176's labels (ISO 639-1 where one exists, else wiki codes such as `als` = Alemannic, `sh`, `bh`) and
wiki language codes (`simple`, `nb`, `zh-yue`). `iso3` maps any of them to ISO 639-3; `match` says whether a
detected code is the expected language exactly, only at the macrolanguage level, or not at all.

A bare code is read as a wiki / lid.176 code first (bare `als` is Alemannic, as on Wikipedia and in
lid.176); the `xxx_Scrp` form is always ISO 639-3 (`als_Latn` is Tosk Albanian).

    iso3("arb_Arab"), iso3("ar"), iso3("sh")        # -> "arb", "ara", "hbs"
    match("arb_Arab", "ara")                        # -> "macro"
    match("ukr_Cyrl", "uk"), match("eng", "deu")    # -> "exact", None
"""

from __future__ import annotations

# fmt: off
# ISO 639-1 -> ISO 639-3 (639-2/T for individual languages; the macrolanguage code where 639-1 names one).
ISO1_TO_ISO3 = {
    "ab": "abk", "af": "afr", "ak": "aka", "am": "amh", "an": "arg", "ar": "ara", "as": "asm", "av": "ava",
    "ay": "aym", "az": "aze", "ba": "bak", "be": "bel", "bg": "bul", "bm": "bam", "bn": "ben", "bo": "bod",
    "br": "bre", "bs": "bos", "ca": "cat", "ce": "che", "ch": "cha", "co": "cos", "cr": "cre", "cs": "ces",
    "cv": "chv", "cy": "cym", "da": "dan", "de": "deu", "dv": "div", "dz": "dzo", "ee": "ewe", "el": "ell",
    "en": "eng", "eo": "epo", "es": "spa", "et": "est", "eu": "eus", "fa": "fas", "ff": "ful", "fi": "fin",
    "fj": "fij", "fo": "fao", "fr": "fra", "fy": "fry", "ga": "gle", "gd": "gla", "gl": "glg", "gn": "grn",
    "gu": "guj", "gv": "glv", "ha": "hau", "he": "heb", "hi": "hin", "hr": "hrv", "ht": "hat", "hu": "hun",
    "hy": "hye", "ia": "ina", "id": "ind", "ie": "ile", "ig": "ibo", "io": "ido", "is": "isl", "it": "ita",
    "iu": "iku", "ja": "jpn", "jv": "jav", "ka": "kat", "kg": "kon", "ki": "kik", "kk": "kaz", "kl": "kal",
    "km": "khm", "kn": "kan", "ko": "kor", "kr": "kau", "ks": "kas", "ku": "kur", "kv": "kom", "kw": "cor",
    "ky": "kir", "la": "lat", "lb": "ltz", "lg": "lug", "li": "lim", "ln": "lin", "lo": "lao", "lt": "lit",
    "lu": "lub", "lv": "lav", "mg": "mlg", "mi": "mri", "mk": "mkd", "ml": "mal", "mn": "mon", "mr": "mar",
    "ms": "msa", "mt": "mlt", "my": "mya", "nb": "nob", "ne": "nep", "nl": "nld", "nn": "nno", "no": "nor",
    "nv": "nav", "ny": "nya", "oc": "oci", "om": "orm", "or": "ori", "os": "oss", "pa": "pan", "pl": "pol",
    "ps": "pus", "pt": "por", "qu": "que", "rm": "roh", "rn": "run", "ro": "ron", "ru": "rus", "rw": "kin",
    "sa": "san", "sc": "srd", "sd": "snd", "se": "sme", "sg": "sag", "si": "sin", "sk": "slk", "sl": "slv",
    "sm": "smo", "sn": "sna", "so": "som", "sq": "sqi", "sr": "srp", "ss": "ssw", "st": "sot", "su": "sun",
    "sv": "swe", "sw": "swa", "ta": "tam", "te": "tel", "tg": "tgk", "th": "tha", "ti": "tir", "tk": "tuk",
    "tl": "tgl", "tn": "tsn", "to": "ton", "tr": "tur", "ts": "tso", "tt": "tat", "tw": "twi", "ty": "tah",
    "ug": "uig", "uk": "ukr", "ur": "urd", "uz": "uzb", "ve": "ven", "vi": "vie", "vo": "vol", "wa": "wln",
    "wo": "wol", "xh": "xho", "yi": "yid", "yo": "yor", "za": "zha", "zh": "zho", "zu": "zul",
}
# Wiki / lid.176 codes that are neither ISO 639-1 nor the ISO 639-3 code of the same language.
WIKI_TO_ISO3 = {
    "als": "gsw", "simple": "eng", "sh": "hbs", "bh": "bih", "zh-yue": "yue", "be-tarask": "bel",
    "be-x-old": "bel", "nds-nl": "nds", "cbk-zam": "cbk", "zh-min-nan": "nan", "zh-classical": "lzh",
    "bat-smg": "sgs", "roa-tara": "nap", "fiu-vro": "vro", "map-bms": "jav", "eml": "egl",
}
# Individual language -> its ISO 639-3 macrolanguage (and `bih`, the Bihari collective lid.176 uses).
MACROLANGUAGE = {
    **dict.fromkeys(["arb", "acm", "acq", "acw", "acx", "adf", "aeb", "aec", "afb", "ajp", "apc", "apd",
                     "arq", "ars", "ary", "arz", "auz", "avl", "ayh", "ayl", "ayn", "ayp", "pga", "shu",
                     "ssh"], "ara"),
    **dict.fromkeys(["pes", "prs"], "fas"),
    **dict.fromkeys(["als", "aln", "aae", "aat"], "sqi"),
    **dict.fromkeys(["azj", "azb"], "aze"),
    **dict.fromkeys(["zsm", "ind", "min", "bjn", "zlm", "jax", "meo", "mfa", "mqg", "xmm", "btj", "bve",
                     "kvr", "lce", "mui", "urk", "vkk"], "msa"),
    **dict.fromkeys(["npi", "dty"], "nep"),
    **dict.fromkeys(["cmn", "yue", "wuu", "nan", "hak", "gan", "hsn", "cdo", "cjy", "cpx", "czh", "czo",
                     "lzh", "mnp"], "zho"),
    **dict.fromkeys(["hrv", "bos", "srp", "cnr"], "hbs"),
    **dict.fromkeys(["lvs", "ltg"], "lav"),
    **dict.fromkeys(["khk", "mvf"], "mon"),
    **dict.fromkeys(["uzn", "uzs"], "uzb"),
    **dict.fromkeys(["ekk", "vro"], "est"),
    **dict.fromkeys(["swh", "swc"], "swa"),
    **dict.fromkeys(["quy", "quz", "qub", "qug", "quh", "qul", "qup", "qvi", "qxo"], "que"),
    **dict.fromkeys(["ory", "spv"], "ori"),
    **dict.fromkeys(["pbt", "pbu", "pst"], "pus"),
    **dict.fromkeys(["kmr", "ckb", "sdh"], "kur"),
    **dict.fromkeys(["gug", "gui", "gun", "nhd"], "grn"),
    **dict.fromkeys(["ayr", "ayc"], "aym"),
    **dict.fromkeys(["gaz", "hae", "orc", "gax"], "orm"),
    **dict.fromkeys(["plt", "skg", "tdx", "xmv", "bhr", "msh"], "mlg"),
    **dict.fromkeys(["ydd", "yih"], "yid"),
    **dict.fromkeys(["knc", "kby", "krt"], "kau"),
    **dict.fromkeys(["nob", "nno"], "nor"),
    **dict.fromkeys(["fuv", "fuf", "ffm", "fub", "fue", "fuh", "fui", "fuq"], "ful"),
    **dict.fromkeys(["dik", "dip", "diw", "dks", "dib"], "din"),
    **dict.fromkeys(["taq", "thv", "thz", "ttq"], "tmh"),
    **dict.fromkeys(["diq", "kiu"], "zza"),
    **dict.fromkeys(["pnb", "skr"], "lah"),
    **dict.fromkeys(["kpv", "koi"], "kom"),
    **dict.fromkeys(["mhr", "mrj"], "chm"),
    **dict.fromkeys(["gom", "knn"], "kok"),
    **dict.fromkeys(["ike", "ikt"], "iku"),
    **dict.fromkeys(["src", "sro", "sdc", "sdn"], "srd"),
    **dict.fromkeys(["kng", "kwy", "ldi"], "kon"),
    **dict.fromkeys(["twi", "fat"], "aka"),
    **dict.fromkeys(["bho", "mag", "mai"], "bih"),  # collective, not a macrolanguage: lid.176's `bh`
}
# fmt: on


def iso3(code: str | None) -> str | None:
    """The ISO 639-3 code of any spelling above; None for empty, 'und' or codes it cannot read."""
    if not code:
        return None
    code = code.strip()
    if "_" in code:  # SIB-200 / FLORES: ISO 639-3 + script
        code = code.split("_", 1)[0]
        return code.lower() if len(code) == 3 and code.isalpha() else None
    code = code.lower()
    if code in WIKI_TO_ISO3:
        return WIKI_TO_ISO3[code]
    if len(code) == 2:
        return ISO1_TO_ISO3.get(code)
    if len(code) == 3 and code.isalpha() and code != "und":
        return code
    return None


def script(code: str) -> str | None:
    """The ISO 15924 script of a SIB-200 code (`jpn_Jpan` -> 'Jpan'); None for a bare language code."""
    return code.split("_", 1)[1] if "_" in code else None


def macrolanguage(code: str | None) -> str | None:
    """The macrolanguage of an ISO 639-3 individual code (itself when it is none's member)."""
    c = iso3(code)
    return MACROLANGUAGE.get(c, c) if c else None


def match(expected: str | None, detected: str | None) -> str | None:
    """'exact' when both name the same ISO 639-3 language, 'macro' when they meet only at the macrolanguage
    (arb vs ara, yue vs cmn, hrv vs hbs), None otherwise or when either cannot be read."""
    e, d = iso3(expected), iso3(detected)
    if e is None or d is None:
        return None
    if e == d:
        return "exact"
    return "macro" if MACROLANGUAGE.get(e, e) == MACROLANGUAGE.get(d, d) else None

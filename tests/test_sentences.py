"""Sentence and clause splitting per script: spans are exact and every rule's boundary case holds."""

from __future__ import annotations

import pytest

from pipeline.sentences import sentences, split_clauses, split_sentences


def _check_spans(text: str, spans: list[tuple[int, int]]) -> None:
    """Spans are in order, do not overlap, are trimmed, and together cover every non-space character."""
    last = 0
    covered = set()
    for a, b in spans:
        assert last <= a < b <= len(text)
        assert text[a:b] == text[a:b].strip()
        covered.update(range(a, b))
        last = b
    assert {i for i, ch in enumerate(text) if not ch.isspace()} <= covered


@pytest.mark.parametrize(
    ("lang", "text", "expected"),
    [
        (
            "en",
            "Dr. Smith met J. R. R. Tolkien in 1919. He left! Did he? Yes, e.g. in the U.S. army.",
            ["Dr. Smith met J. R. R. Tolkien in 1919.", "He left!", "Did he?", "Yes, e.g. in the U.S. army."],
        ),
        (
            "de",
            "Am 1. Januar 1919 kam er an. Danach z. B. nicht mehr.",
            ["Am 1. Januar 1919 kam er an.", "Danach z. B. nicht mehr."],
        ),
        (
            "ru",
            "В 1919 г. он переехал в Киев. Там он жил, т. е. работал. Потом — нет.",
            ["В 1919 г. он переехал в Киев.", "Там он жил, т. е. работал.", "Потом — нет."],
        ),
        (
            "uk",
            "Тарас Г. Шевченко народився 1814 р. в Моринцях. Помер у Петербурзі.",
            ["Тарас Г. Шевченко народився 1814 р. в Моринцях.", "Помер у Петербурзі."],
        ),
        (
            "ja",
            "東京は日本の首都である。人口は約1400万人！本当？はい",
            ["東京は日本の首都である。", "人口は約1400万人！", "本当？", "はい"],
        ),
        ("zh", "北京是中国的首都。它有三千年历史。", ["北京是中国的首都。", "它有三千年历史。"]),
        ("mr", "भारत एक देश आहे। तो मोठा आहे॥ पुढे", ["भारत एक देश आहे।", "तो मोठा आहे॥", "पुढे"]),
        ("hi", "१९१९ में युद्ध समाप्त हुआ। फिर शांति आई।", ["१९१९ में युद्ध समाप्त हुआ।", "फिर शांति आई।"]),
        ("hy", "Հայաստանը երկիր է։ Այն փոքր է։", ["Հայաստանը երկիր է։", "Այն փոքր է։"]),
        ("hy", "Երևանը մայրաքաղաքն է: Այն հին է:", ["Երևանը մայրաքաղաքն է:", "Այն հին է:"]),
        ("ar", "هل هذا صحيح؟ نعم هو صحيح.", ["هل هذا صحيح؟", "نعم هو صحيح."]),
        (
            "en",
            'He said "Stop." Then he left... and came back. (So it goes.) End',
            ['He said "Stop."', "Then he left... and came back.", "(So it goes.)", "End"],
        ),
        ("uk", "1 січня — подія\n5 лютого — інша подія", ["1 січня — подія", "5 лютого — інша подія"]),
    ],
)
def test_sentences_per_script(lang: str, text: str, expected: list[str]) -> None:
    spans = split_sentences(text, lang)
    assert [text[a:b] for a, b in spans] == expected
    _check_spans(text, spans)


def test_colon_ends_a_sentence_only_in_armenian() -> None:
    assert sentences("Note: This is it.", "en") == ["Note: This is it."]
    assert len(sentences("Նա եկավ: Մենք գնացինք:", "hy")) == 2


def test_empty_and_whitespace_give_no_sentences() -> None:
    assert split_sentences("", "en") == []
    assert split_sentences("  \n\t ", "en") == []


def test_clauses_split_after_commas_but_not_inside_numbers() -> None:
    s = "The Panthers defense gave up just 308 points, ranking sixth in the league, while leading with 1,000 yards."
    clauses = [s[a:b] for a, b in split_clauses(s, "en")]
    assert clauses == [
        "The Panthers defense gave up just 308 points,",
        "ranking sixth in the league,",
        "while leading with 1,000 yards.",
    ]


def test_cjk_clauses_need_no_space_and_short_pieces_merge() -> None:
    s = "東京は日本の首都であり、人口は約1400万人で、世界最大の都市圏である。"
    assert [s[a:b] for a, b in split_clauses(s, "ja")] == [
        "東京は日本の首都であり、",
        "人口は約1400万人で、",
        "世界最大の都市圏である。",
    ]
    short = "Yes, he said, it was over."
    # "Yes," is under the minimum length (12 characters): it joins the clause after it.
    assert [short[a:b] for a, b in split_clauses(short, "en")] == ["Yes, he said,", "it was over."]
    assert [short[a:b] for a, b in split_clauses(short, "en", min_chars=20)] == ["Yes, he said, it was over."]


# --------------------------------------------------------------- hard cases measured in bench/sentences.py


@pytest.mark.parametrize(
    ("lang", "text", "expected"),
    [
        (  # abbreviations, initials and a chain of small-letter abbreviations stay inside the sentence
            "en",
            "Prof. J. K. Smith arrived at 5 p.m. on Monday. Mr. Jones did not.",
            ["Prof. J. K. Smith arrived at 5 p.m. on Monday.", "Mr. Jones did not."],
        ),
        ("de", "Es gibt z. B. Äpfel. Dann kam er.", ["Es gibt z. B. Äpfel.", "Dann kam er."]),
        # a single small letter alone is a word: Fon "e." ends the sentence before "É"
        ("fon", "É ɖò Whitehall e. É 11:20 ɔ, kpo.", ["É ɖò Whitehall e.", "É 11:20 ɔ, kpo."]),
        (
            "ja",
            "東京は首都です。大阪は大きい。「本当？」はい。",
            ["東京は首都です。", "大阪は大きい。", "「本当？」", "はい。"],
        ),
        ("zh", "他来了。她走了！", ["他来了。", "她走了！"]),
        ("hi", "यह एक वाक्य है। यह दूसरा है।", ["यह एक वाक्य है।", "यह दूसरा है।"]),
        ("hy", "Երևանը մայրաքաղաքն է։ Այն հին է։", ["Երևանը մայրաքաղաքն է։", "Այն հին է։"]),
        # a Devanagari word ending in a consonant after a vowel sign is not an initial
        (
            "mr",
            "त्यांनी ४९ सामने खेळले आहेत. पोलिसांचा पाहारा होता.",
            ["त्यांनी ४९ सामने खेळले आहेत.", "पोलिसांचा पाहारा होता."],
        ),
        # Georgian Mkhedruli is caseless although Unicode files it as lowercase
        ("ka", "ეს არის პირველი. ეს მეორეა.", ["ეს არის პირველი.", "ეს მეორეა."]),
        # Tibetan: no shad after a final ga, a space ends the sentence
        ("bo", "ཁོང་ཚོ་ཕྱིར་ལོག་འདུག ཆུ་ཚོད་བཅུ་གཅིག་ལ་སླེབ།", ["ཁོང་ཚོ་ཕྱིར་ལོག་འདུག", "ཆུ་ཚོད་བཅུ་གཅིག་ལ་སླེབ།"]),
        # Tibetan: a shad after a clause particle (ནས "after") closes a clause, after an auxiliary a sentence
        (
            "bo",
            "ཁོང་ལྷ་སར་སོང་ནས། ཆུ་ཚོད་གཉིས་སྡོད་པ་རེད། ཁོ་ཚོ་ཕྱིར་ལོག་ཡོད།",
            ["ཁོང་ལྷ་སར་སོང་ནས། ཆུ་ཚོད་གཉིས་སྡོད་པ་རེད།", "ཁོ་ཚོ་ཕྱིར་ལོག་ཡོད།"],
        ),
        ("bo", "ཀུ་ཤུ་དང་། ཚལ་ཐང་བཟས་སོ། ཁོ་ཕྱིར་ལོག་ཡོད།", ["ཀུ་ཤུ་དང་། ཚལ་ཐང་བཟས་སོ།", "ཁོ་ཕྱིར་ལོག་ཡོད།"]),
        ("sat", "ᱱᱚᱶᱟ ᱢᱤᱫ ᱠᱟᱛᱷᱟ ᱾ ᱱᱚᱶᱟ ᱵᱟᱨ ᱾", ["ᱱᱚᱶᱟ ᱢᱤᱫ ᱠᱟᱛᱷᱟ ᱾", "ᱱᱚᱶᱟ ᱵᱟᱨ ᱾"]),
    ],
)
def test_hard_cases(lang: str, text: str, expected: list[str]) -> None:
    spans = split_sentences(text, lang)
    assert [text[a:b] for a, b in spans] == expected
    _check_spans(text, spans)


def test_khmer_zero_width_space_is_trimmed() -> None:
    text = "គាត់\u200bបាន\u200bមក\u200b។\u200b គាត់\u200bទៅ\u200b។"
    assert sentences(text, "km") == ["គាត់\u200bបាន\u200bមក\u200b។", "គាត់\u200bទៅ\u200b។"]


def test_thai_sentences_end_at_a_space_and_its_full_stop_is_an_abbreviation() -> None:
    text = (
        "การประท้วงเริ่มขึ้นประมาณ 11.00 น. ตามเวลาท้องถิ่น "
        "ตำรวจได้ขอให้ผู้ประท้วงย้ายกลับขึ้นไปบนบาทวิถี "
        "นายกรัฐมนตรีกล่าวว่ารัฐบาลจะไม่เปลี่ยนแปลงนโยบายในปีนี้"
    )
    spans = split_sentences(text, "th")
    got = [text[a:b] for a, b in spans]
    assert len(got) >= 2
    assert not any(piece.endswith("น.") for piece in got)  # "11.00 น." (o'clock) is never an end
    assert got[0].startswith("การประท้วงเริ่มขึ้นประมาณ 11.00 น. ตามเวลา")
    _check_spans(text, spans)


def test_thai_space_before_a_relative_or_connective_is_inside_the_sentence() -> None:
    # PyThaiNLP's CRF ends a sentence before ซึ่ง ("which"); the relative ties its clause to the one before
    text = "บริษัทเปิดตัวโทรศัพท์รุ่นใหม่ ซึ่งมีกล้องสามตัว ราคาของมันสูงกว่ารุ่นเดิมมาก"
    spans = split_sentences(text, "th")
    assert [text[a:b] for a, b in spans] == [
        "บริษัทเปิดตัวโทรศัพท์รุ่นใหม่ ซึ่งมีกล้องสามตัว",
        "ราคาของมันสูงกว่ารุ่นเดิมมาก",
    ]
    _check_spans(text, spans)


def test_sentencex_is_the_measured_alternative() -> None:
    from pipeline.sentences import sentencex_code, sentencex_spans

    text = "Dr. Smith went to Washington. He arrived on Monday."
    assert [text[a:b] for a, b in sentencex_spans(text, "eng_Latn")] == [
        "Dr. Smith went to Washington.",
        "He arrived on Monday.",
    ]
    assert (
        sentencex_code("hye_Armn") == "hy"
        and sentencex_code("arb_Arab") == "ar"
        and sentencex_code("fon_Latn") == "fon"
    )


@pytest.mark.shared
def test_bench_scores_boundaries_on_sib200(shared_dir) -> None:
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "bench/sentences.py", "--sib200", str(shared_dir / "corpus" / "sib200")]
    out = subprocess.run(
        [*cmd, "--langs", "eng_Latn,hye_Armn,jpn_Jpan"], cwd=repo, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("split_f1=") and float(last.split("=")[1]) >= 0.97
    bad = subprocess.run([*cmd, "--per-paragraph", "1"], cwd=repo, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1

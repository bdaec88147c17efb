"""Training and evaluation data: stored text tables streamed shard by shard, or a synthetic Markov chain.

`ShardData` reads any stored table with a `text` column (`documents`, or `sections` for plain-wiki runs)
through `VersionRef.iter_batches` (never a full load; each shard checked against the manifest's sha256
once per process, so a file swapped after commit is refused, not trained or scored on), split into
train/val/test by concept (training/split.py: fixed, and no translation of a test text is ever trained on),
sharded `rank::world_size`.
  - tokens: every text is tokenised once per tokenizer into a stored token table (training/token_table.py,
    found again by later epochs, resumes and runs); training and evaluation read ids from it.
  - training: documents' ids are joined with <eos> and cut into fixed windows of seq_len tokens,
    shuffled through a seeded buffer; an infinite, deterministic stream of `Batch`es (resume = skip n:
    whole epochs by their window count, read from the stored lengths).
  - evaluation: one (prompt of 100-200 tokens, 50-token continuation) pair per long-enough document.
  - significance (optional): character spans with removal ranks land on token positions
    (`Batch.removal_rank`; a token takes the lowest rank of the spans it overlaps, -1 where none).

`MarkovData` draws sequences from a random sparse Markov chain whose entropy rate is known exactly:
a model's NLL per token can be checked against it.

    data = open_data("NAME-docs@latest", tokenizer, seq_len=256, batch_size=16)
    for batch in data.train_batches(start=0): ...
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from storage.store import VersionRef, data_root, open_version
from training.split import column_names, row_id_and_unit, split_of, unit_columns
from training.token_table import TOKENS_TABLE, ensure_token_table, list_column
from training.tokenizers import ByteTokenizer, Tokenizer
from training.variant import Batch, scored_mask
from wikimix.errors import ConfigError, WikimixError

TEXT_TABLES = ("documents", "sections")
SYNTHETIC_MARKOV = "synthetic:markov"
SHARD_CYCLE = 8  # shards read at once, interleaved


@dataclass
class DataOptions:
    seq_len: int = 256
    batch_size: int = 16
    val_frac: float = 0.05
    test_frac: float = 0.05
    prompt_min: int = 100
    prompt_max: int = 200
    cont_len: int = 50
    shuffle_buffer: int = 512  # windows
    seed: int = 0
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.seq_len < 2 or self.batch_size < 1:
            raise ConfigError(f"need seq_len >= 2 and batch_size >= 1, got {self.seq_len}, {self.batch_size}")
        if not (0 <= self.val_frac < 1 and 0 <= self.test_frac < 1 and self.val_frac + self.test_frac < 1):
            raise ConfigError(
                f"val_frac + test_frac must be in [0, 1), got {self.val_frac} + {self.test_frac}"
            )
        if not 1 <= self.prompt_min <= self.prompt_max or self.cont_len < 1:
            raise ConfigError("need 1 <= prompt_min <= prompt_max and cont_len >= 1")
        if not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank {self.rank} out of range for world_size {self.world_size}")


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def parse_data_spec(spec: str, root: str | None = None) -> VersionRef:
    """'DATASET' (latest) or 'DATASET@VERSION' under the data root."""
    if not spec:
        raise ConfigError("no data given: pass --data DATASET[@VERSION]")
    dataset, _, version = spec.partition("@")
    return open_version(data_root(root), dataset, version or "latest")


TOKEN_KEY = ["doc_id", "unit"]  # the token table's columns a row's (id, split unit) come from


def _token_key(row: tuple) -> tuple[str, str]:
    return row[0], row[1]


def _values(column) -> list:
    """A record batch column as Python values (list<int32> columns through numpy: much faster)."""
    return list_column(column) if column.type == pa.list_(pa.int32()) else column.to_pylist()


def token_ranks(offsets: list[tuple[int, int]], spans: list[tuple[int, int, int]]) -> list[int]:
    """Removal rank per token: the lowest rank of the character spans it overlaps, -1 where none.

    Token offsets come in text order (starts and ends non-decreasing), so each span finds its tokens
    by bisection."""
    ranks = [-1] * len(offsets)
    starts = [s for s, _ in offsets]
    ends = [e for _, e in offsets]
    for start, end, rank in spans:
        lo = bisect.bisect_right(ends, start)  # first token ending after the span starts
        hi = bisect.bisect_left(starts, end)  # first token starting at/after the span ends
        for i in range(lo, hi):
            if ends[i] > start and (ranks[i] < 0 or rank < ranks[i]):
                ranks[i] = rank
    return ranks


class ShardData:
    """Batches from a stored text table (see the module docstring)."""

    def __init__(
        self,
        ref: VersionRef,
        tokenizer: Tokenizer,
        options: DataOptions,
        significance: VersionRef | None = None,
        table: str | None = None,
        ranker: str | None = None,
    ):
        self.ref, self.tok, self.opt = ref, tokenizer, options  # tok: also forgets a found token table
        tables = ref.tables()
        self.table = table or next((t for t in TEXT_TABLES if t in tables), None)
        if self.table not in tables or self.table not in TEXT_TABLES:
            raise ConfigError(f"{ref} has no text table to train on (needs one of {', '.join(TEXT_TABLES)})")
        self.significance = self._load_significance(significance, ranker) if significance else None
        self.unit_columns = unit_columns(self.table, column_names(ref, self.table))
        self.units: dict[str, str] = {}  # doc_id -> split unit (concept), for every document read so far

    # ---- documents -----------------------------------------------------------------------------------

    def _load_significance(
        self, ref: VersionRef, ranker: str | None
    ) -> dict[str, list[tuple[int, int, int]]]:
        """doc_id -> [(start, end, removal_rank)] of one ranker (the first one met when not named)."""
        out: dict[str, list[tuple[int, int, int]]] = {}
        for rb in ref.iter_batches("significance", columns=["doc_id", "ranker", "spans"], verify=True):
            for doc_id, rk, spans in zip(*(rb.column(i).to_pylist() for i in range(3)), strict=True):
                ranker = ranker or rk
                if rk == ranker and spans:
                    out[doc_id] = sorted((s["start"], s["end"], s["removal_rank"]) for s in spans)
        return out

    def documents(
        self, split: str, world_size: int | None = None, rank: int | None = None, epoch: int | None = None
    ) -> Iterator[tuple[str, str]]:
        """(doc_id, text) of one split, this rank's share (see _split_rows)."""
        columns = self.unit_columns + ["text"]
        for doc_id, row in self._split_rows(
            self.ref, self.table, columns, split, world_size, rank, epoch, self._source_key, len(columns) - 1
        ):
            yield doc_id, row[-1]

    def _source_key(self, row: tuple) -> tuple[str, str]:
        return row_id_and_unit(self.table, list(row[:-1]))

    def _split_rows(
        self,
        ref: VersionRef,
        table: str,
        columns: list[str],
        split: str,
        world_size: int | None,
        rank: int | None,
        epoch: int | None,
        key: Callable[[tuple], tuple[str, str]],
        empty_at: int,
    ) -> Iterator[tuple[str, tuple]]:
        """(row id, row) of one split, this rank's share, from the text table or its token table (the
        same rows in the same order): whole shards when there are at least as many shards as ranks, else
        every world_size-th row. Shards are read interleaved, a few at a time (record batch by record
        batch), so consecutive rows come from different shards; with `epoch` the shard order is shuffled
        per epoch. `key` gives a row's (id, split unit); rows whose column `empty_at` is empty (no text,
        no tokens) are left out."""
        world_size = self.opt.world_size if world_size is None else world_size
        rank = self.opt.rank if rank is None else rank
        n_files = len(ref.files(table))
        by_file = n_files >= world_size
        order = [i for i in range(n_files) if not by_file or i % world_size == rank]
        if epoch is not None:
            random.Random(_stable_int(f"shards:{self.opt.seed}:{epoch}")).shuffle(order)
        seen = 0
        for row in self._interleave(ref, table, order, n_files, columns):
            # split by concept (training/split.py): no translation of a test text is trained on
            doc_id, unit = key(row)
            self.units[doc_id] = unit
            if not row[empty_at] or split_of(unit, self.opt.val_frac, self.opt.test_frac) != split:
                continue
            seen += 1
            if by_file or (seen - 1) % world_size == rank:
                yield doc_id, row

    def _rows(
        self, ref: VersionRef, table: str, shard: int, n_files: int, columns: list[str]
    ) -> Iterator[tuple]:
        for rb in ref.iter_batches(table, 256, columns, rank=shard, world_size=n_files, verify=True):
            yield from zip(*(_values(rb.column(c)) for c in columns), strict=True)

    def _interleave(
        self, ref: VersionRef, table: str, order: list[int], n_files: int, columns: list[str]
    ) -> Iterator[tuple]:
        """Rows round-robin over up to SHARD_CYCLE open shards, opening the next as one ends."""
        pending = [self._rows(ref, table, i, n_files, columns) for i in order]
        active: list[Iterator[tuple]] = []
        while pending or active:
            while pending and len(active) < SHARD_CYCLE:
                active.append(pending.pop(0))
            for stream in list(active):
                row = next(stream, None)
                if row is None:
                    active.remove(stream)
                else:
                    yield row

    def texts(self, split: str = "train", max_chars: int | None = None) -> Iterator[str]:
        """Plain texts of a split (all ranks' shares), e.g. to train a BPE tokenizer on."""
        total = 0
        for _, text in self.documents(split, world_size=1, rank=0):
            yield text
            total += len(text)
            if max_chars is not None and total >= max_chars:
                return

    # ---- token ids -----------------------------------------------------------------------------------

    @property
    def tok(self) -> Tokenizer:
        return self._tok

    @tok.setter
    def tok(self, tokenizer: Tokenizer) -> None:
        self._tok = tokenizer
        self._tokens: VersionRef | None = None

    def token_table(self) -> VersionRef | None:
        """This text table's token ids under this tokenizer (training/token_table.py): found, or
        tokenised and stored on first use, so no document is tokenised twice, across epochs, resumes
        and runs. None for a text table without rows: nothing to store (a run on it stops on bad input
        and leaves nothing behind)."""
        if self._tokens is None:
            if not self.ref.num_rows(self.table):
                self.ref.check_shards(self.table)
                return None
            self._tokens = ensure_token_table(self.ref, self.table, self.tok)
        return self._tokens

    def _token_rows(self, columns: list[str], split: str, epoch: int | None) -> Iterator[tuple[str, tuple]]:
        """(row id, row) of the token table (`columns`, starting with TOKEN_KEY and n_tokens) of one split,
        this rank's share, in the order the text rows come (see _split_rows)."""
        table = self.token_table()
        if table is None:
            return iter(())
        return self._split_rows(table, TOKENS_TABLE, columns, split, None, None, epoch, _token_key, 2)

    def _tokenized(
        self, split: str, epoch: int | None = None
    ) -> Iterator[tuple[str, list[int], list[int] | None]]:
        """(doc_id, ids, removal ranks or None) of a split, this rank's share, from the token table."""
        columns = TOKEN_KEY + ["n_tokens", "ids"]
        if self.significance is not None:
            columns += ["starts", "ends"]
        for doc_id, row in self._token_rows(columns, split, epoch):
            ids = row[3]
            if self.significance is None:
                yield doc_id, ids, None
                continue
            spans = self.significance.get(doc_id)
            ranks = token_ranks(list(zip(row[4], row[5], strict=True)), spans) if spans else [-1] * len(ids)
            yield doc_id, ids, ranks

    def _windows_per_epoch(self) -> int:
        """Training windows in one epoch of this rank's share: its tokens and one <eos> per document, cut
        every seq_len, whatever the order (counted from the stored lengths alone)."""
        total = sum(row[2] + 1 for _, row in self._token_rows(TOKEN_KEY + ["n_tokens"], "train", None))
        return total // self.opt.seq_len

    # ---- training windows ----------------------------------------------------------------------------

    def _windows(self, epoch: int) -> Iterator[tuple[list[int], list[int], list[str]]]:
        """One epoch of packed windows (tokens, ranks, doc ids), shuffled through a seeded buffer."""
        n = self.opt.seq_len
        rng = random.Random(_stable_int(f"{self.opt.seed}:{epoch}:{self.opt.rank}"))
        buffer: list[tuple[list[int], list[int], list[str]]] = []
        ids: list[int] = []
        ranks: list[int] = []
        pieces: deque[list] = deque()  # [doc id, tokens of it still in `ids`], in order
        for doc_id, doc_ids, doc_ranks in self._tokenized("train", epoch):
            ids.extend(doc_ids + [self.tok.special.eos_id])
            ranks.extend((doc_ranks or [-1] * len(doc_ids)) + [-1])
            pieces.append([doc_id, len(doc_ids) + 1])
            while len(ids) >= n:
                window_docs, need = [], n
                while need:
                    piece = pieces[0]
                    window_docs.append(piece[0])
                    take = min(need, piece[1])
                    piece[1] -= take
                    need -= take
                    if not piece[1]:
                        pieces.popleft()
                buffer.append((ids[:n], ranks[:n], window_docs))
                ids, ranks = ids[n:], ranks[n:]
                if len(buffer) >= self.opt.shuffle_buffer:
                    yield buffer.pop(rng.randrange(len(buffer)))
        rng.shuffle(buffer)
        yield from buffer

    def train_batches(self, start: int = 0) -> Iterator[Batch]:
        """Infinite stream of training batches; `start` skips that many batches (exact resume): whole
        epochs by counting their windows, then the rest of the windows of the epoch it lands in."""
        skip = start * self.opt.batch_size  # windows before the first batch to yield
        epoch = 0
        if skip:
            per_epoch = self._windows_per_epoch()
            if not per_epoch:
                raise self._no_window()
            epoch, skip = divmod(skip, per_epoch)
        rows: list[tuple[list[int], list[int], list[str]]] = []
        while True:
            empty = True
            for window in self._windows(epoch):
                empty = False
                if skip:
                    skip -= 1
                    continue
                rows.append(window)
                if len(rows) == self.opt.batch_size:
                    yield self._collate_windows(rows)
                    rows = []
            if empty:
                raise self._no_window()
            epoch += 1

    def _no_window(self) -> WikimixError:
        return WikimixError(
            f"{self.ref}: rank {self.opt.rank} has no training window of {self.opt.seq_len} tokens "
            "(data too small for seq_len / world_size)"
        )

    def _collate_windows(self, rows: list[tuple[list[int], list[int], list[str]]]) -> Batch:
        tokens = torch.tensor([r[0] for r in rows], dtype=torch.long)
        removal = (
            torch.tensor([r[1] for r in rows], dtype=torch.long) if self.significance is not None else None
        )
        return Batch(
            tokens=tokens,
            pad_mask=torch.ones_like(tokens, dtype=torch.bool),
            prompt_len=torch.zeros(len(rows), dtype=torch.long),
            removal_rank=removal,
            doc_ids=["+".join(r[2]) for r in rows],
        )

    # ---- evaluation pairs ----------------------------------------------------------------------------

    def eval_batches(
        self, split: str = "val", batch_size: int | None = None, max_examples: int | None = None
    ) -> Iterator[Batch]:
        """(prompt, continuation) pairs, right-padded: prompt_len in [prompt_min, prompt_max] fixed per
        document by its id, then cont_len scored tokens. Documents shorter than prompt_min + cont_len
        are skipped."""
        if split not in ("val", "test"):
            raise ConfigError(f"evaluation split must be 'val' or 'test', got {split!r}")
        o = self.opt
        batch_size = batch_size or o.batch_size
        rows: list[tuple[str, list[int], list[int] | None, int]] = []
        count = 0
        for doc_id, ids, ranks in self._tokenized(split):
            if len(ids) < o.prompt_min + o.cont_len:
                continue
            longest = min(o.prompt_max, len(ids) - o.cont_len)
            prompt_len = o.prompt_min + _stable_int(doc_id) % (longest - o.prompt_min + 1)
            end = prompt_len + o.cont_len
            rows.append((doc_id, ids[:end], ranks[:end] if ranks is not None else None, prompt_len))
            count += 1
            if len(rows) == batch_size or count == max_examples:
                yield collate_pairs(rows, self.tok.special.pad_id)
                rows = []
            if count == max_examples:
                return
        if rows:
            yield collate_pairs(rows, self.tok.special.pad_id)


def collate_pairs(rows: list[tuple[str, list[int], list[int] | None, int]], pad_id: int) -> Batch:
    """Right-pad (doc_id, ids, ranks, prompt_len) rows into one Batch."""
    width = max(len(r[1]) for r in rows)
    tokens = torch.full((len(rows), width), pad_id, dtype=torch.long)
    pad_mask = torch.zeros((len(rows), width), dtype=torch.bool)
    has_ranks = rows[0][2] is not None
    removal = torch.full((len(rows), width), -1, dtype=torch.long) if has_ranks else None
    for i, (_, ids, ranks, _) in enumerate(rows):
        tokens[i, : len(ids)] = torch.tensor(ids)
        pad_mask[i, : len(ids)] = True
        if removal is not None:
            removal[i, : len(ids)] = torch.tensor(ranks)
    prompt_len = torch.tensor([r[3] for r in rows], dtype=torch.long)
    return Batch(tokens, pad_mask, prompt_len, removal, [r[0] for r in rows])


# ---- synthetic source --------------------------------------------------------------------------------


class MarkovData:
    """Sequences from a random sparse first-order Markov chain over `n_states` letters ('a', 'b', ...),
    tokenised by the byte tokenizer. Each step's global batch (batch_size * world_size rows) is drawn
    from a generator seeded by (seed, step) and rank r takes rows r::world_size, so any world size sees
    the same data: 2 ranks x B rows == 1 rank x 2B rows."""

    def __init__(self, options: DataOptions, n_states: int = 8, branching: int = 3, chain_seed: int = 1234):
        self.opt = options
        self.tok = ByteTokenizer()
        g = np.random.default_rng(chain_seed)
        trans = np.zeros((n_states, n_states))
        for s in range(n_states):
            nxt = g.choice(n_states, size=branching, replace=False)
            trans[s, nxt] = g.dirichlet(np.ones(branching))
        evals, evecs = np.linalg.eig(trans.T)
        stationary = np.real(evecs[:, np.argmin(np.abs(evals - 1))])
        self.stationary = stationary / stationary.sum()
        self.transition = trans
        self.symbols = torch.tensor([ord("a") + s for s in range(n_states)])

    @property
    def entropy_rate(self) -> float:
        """Nats per token in the long run: sum_i pi_i H(P_i)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            row_h = -np.nansum(
                np.where(self.transition > 0, self.transition * np.log(self.transition), 0), axis=1
            )
        return float(self.stationary @ row_h)

    def _draw(self, rows: int, length: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        trans = torch.tensor(self.transition, dtype=torch.float64)
        state = torch.multinomial(torch.tensor(self.stationary).expand(rows, -1), 1, generator=g)[:, 0]
        out = [state]
        for _ in range(length - 1):
            state = torch.multinomial(trans[state], 1, generator=g)[:, 0]
            out.append(state)
        return self.symbols[torch.stack(out, dim=1)]

    def train_batches(self, start: int = 0) -> Iterator[Batch]:
        o = self.opt
        step = start
        while True:
            tokens = self._draw(
                o.batch_size * o.world_size, o.seq_len, _stable_int(f"markov:{o.seed}:{step}") % 2**63
            )
            yield Batch.from_tokens(tokens[o.rank :: o.world_size].contiguous())
            step += 1

    def eval_batches(
        self, split: str = "val", batch_size: int | None = None, max_examples: int | None = None
    ) -> Iterator[Batch]:
        """Fixed sequences of prompt_min + cont_len tokens; only the continuation is scored."""
        o = self.opt
        n = max_examples or 64
        batch_size = batch_size or o.batch_size
        tokens = self._draw(n, o.prompt_min + o.cont_len, _stable_int(f"markov-eval:{split}") % 2**63)
        mine = tokens[o.rank :: o.world_size]
        for i in range(0, mine.shape[0], batch_size):
            chunk = mine[i : i + batch_size]
            yield Batch.from_tokens(chunk, prompt_len=o.prompt_min)

    def oracle_nll(self, batch: Batch) -> tuple[float, int]:
        """The chain's own NLL (nats) of a batch's scored tokens given the previous token: the floor a
        model's NLL on the same tokens approaches (position 0 is scored under the stationary law)."""
        states = (batch.tokens - int(self.symbols[0])).clamp(0, len(self.symbols) - 1)
        logp = torch.log(torch.tensor(self.transition))[states[:, :-1], states[:, 1:]]
        first = torch.log(torch.tensor(self.stationary))[states[:, :1]]
        logp = torch.cat([first, logp], dim=1)
        scored = scored_mask(batch)
        return float(-logp[scored].sum()), int(scored.sum())

    def texts(self, split: str = "train", max_chars: int | None = None) -> Iterator[str]:
        for row in self._draw(64, self.opt.seq_len, 99):
            yield self.tok.decode(row.tolist())


def open_data(
    spec: str,
    tokenizer: Tokenizer | None,
    options: DataOptions,
    significance: str | None = None,
    table: str | None = None,
    root: str | None = None,
) -> ShardData | MarkovData:
    """A data source from a spec: 'DATASET[@VERSION]' under the data root, or 'synthetic:markov'."""
    if spec == SYNTHETIC_MARKOV:
        return MarkovData(options)
    if tokenizer is None:
        raise ConfigError("a tokenizer is needed for stored data")
    sig = parse_data_spec(significance, root) if significance else None
    return ShardData(parse_data_spec(spec, root), tokenizer, options, significance=sig, table=table)

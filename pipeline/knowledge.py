"""A controlled multilingual knowledge base and the corpora of the knowledge experiment's arms.

    kb = make_kb(KBConfig(n_entities=2000, seed=0))
    arms = render_arms(kb, count_tokens=lambda text: len(text.encode()))   # arm -> `documents` rows
    items = cloze_items(kb, entities=kb.entities[:200])                      # held-out-template queries

Fictional people (`entities`) each have one value per attribute from a closed set (knowledge_lexicon); a
fact (entity, attribute) is rendered as one sentence in one language with one frame. Names are written in
each language's script (a fixed syllable transliteration); values are translated, so the only link between
a fact's renderings in two languages is its meaning. `latin_names=True` keeps names in Latin everywhere:
the shared-string control, which shows how much of a cross-language score rides on the name's spelling.

Held out in every arm alike: for each fact, one query language other than the entity's home language in
which it is never rendered (`Entity.heldout`), and the test frames (lexicon.TEST_FRAMES), never rendered in
training at all. The arms, at equal training tokens (each arm's documents are drawn round after round
until its token count reaches the same target, by default `passes` rounds of the parallel arm):
  mono     : the entity's biography in its home language only (homes spread evenly over the languages);
  parallel : the biography as separate monolingual documents in every language;
  cs       : one document per biography, each sentence in a random allowed language, new mix every time;
  cs-fixed : code-switched with one fixed language per fact (the same mix every time: "switching" without
             "variety").
Every rendering draws a fresh train frame and attribute order. Documents carry the entity as `concept`
and, per sentence, a segment: language, span, and provenance (wiki `kb-<lang>`, page_id = entity index,
section_idx = attribute index, paragraph_idx = frame index, sentence_idx = position in the document).
`finetune_docs` renders the separate fine-tuning entities (never in any arm) in one language.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pipeline import knowledge_lexicon as lex
from wikimix.errors import ConfigError

ARMS = ("mono", "parallel", "cs", "cs-fixed")
CountTokens = Callable[[str], int]


def utf8_bytes(text: str) -> int:
    """Token count of the byte tokenizer (the default measure of an arm's size)."""
    return len(text.encode("utf-8"))


def _hash(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(map(str, parts)).encode()).digest()[:8], "big")


@dataclass
class KBConfig:
    n_entities: int = 2000
    n_finetune_entities: int = 200  # rendered only in the fine-tuning language, never in any arm
    langs: tuple[str, ...] = lex.LANGS
    seed: int = 0
    latin_names: bool = False  # the shared-string control: names spelled in Latin in every language
    passes: int = 4  # rounds of the parallel arm that fix every arm's token target

    def __post_init__(self) -> None:
        self.langs = tuple(self.langs)
        unknown = sorted(set(self.langs) - set(lex.LANGS))
        if unknown:
            raise ConfigError(
                f"no lexicon for language(s) {', '.join(unknown)} (have: {', '.join(lex.LANGS)})"
            )
        if len(self.langs) < 2 or len(set(self.langs)) != len(self.langs):
            raise ConfigError(f"need at least two distinct languages, got {list(self.langs)}")
        if self.n_entities < 1 or self.n_finetune_entities < 0 or self.passes < 1:
            raise ConfigError("n_entities and passes must be >= 1, n_finetune_entities >= 0")


@dataclass
class Entity:
    id: str  # 'E00042' (the documents' concept)
    index: int
    name: tuple[str, ...]  # romanised name parts, e.g. ('tore', 'malko')
    home: str  # the mono arm's language
    values: dict[str, int]  # attribute -> value index
    heldout: dict[str, str] = field(default_factory=dict)  # attribute -> query language never rendered
    fixed_mix: dict[str, str] = field(default_factory=dict)  # attribute -> cs-fixed arm's language


@dataclass
class KB:
    config: KBConfig
    entities: list[Entity]
    finetune_entities: list[Entity]

    @property
    def fingerprint(self) -> str:
        c = self.config
        return f"{_hash(c.n_entities, c.n_finetune_entities, c.langs, c.seed, c.latin_names):016x}"


# ---- names ----------------------------------------------------------------------------------------------


def _syllables(part: str) -> list[str]:
    if len(part) % 2 or any(part[i] not in lex.CONSONANTS or part[i + 1] not in lex.VOWELS
                            for i in range(0, len(part), 2)):  # fmt: skip
        raise ConfigError(f"name part {part!r} is not a sequence of consonant-vowel syllables")
    return [part[i : i + 2] for i in range(0, len(part), 2)]


def _letters(part: str, table: dict[str, str], initial: dict[str, str]) -> str:
    out = [initial.get(ch, table[ch]) if i == 0 else table[ch] for i, ch in enumerate(part)]
    return "".join(out)


def transliterate(name: tuple[str, ...], lang: str) -> str:
    """The name as `lang` writes it: Latin (capitalised) for en/de/vi, Cyrillic for ru, Armenian for hy,
    Katakana with a middle dot between the parts for ja. Deterministic, letter by letter (syllable by
    syllable for Katakana)."""
    script = lex.SCRIPTS[lang]
    if script == "Latin":
        return " ".join(p.capitalize() for p in name)
    if script == "Cyrillic":
        return " ".join(_letters(p, lex.CYRILLIC, lex.CYRILLIC_INITIAL).capitalize() for p in name)
    if script == "Armenian":
        return " ".join(_letters(p, lex.ARMENIAN, lex.ARMENIAN_INITIAL).capitalize() for p in name)
    kana = []
    for p in name:
        sylls = _syllables(p)
        kana.append("".join(lex.KATAKANA_SPECIAL.get(s) or lex.KATAKANA[s[0]][lex.VOWELS.index(s[1])]
                            for s in sylls))  # fmt: skip
    return lex.JA_NAME_SEPARATOR.join(kana)


def _random_name(rng: random.Random) -> tuple[str, ...]:
    parts = []
    for _ in range(2):
        n = rng.choice((2, 3))
        sylls = [rng.choice(lex.CONSONANTS) + rng.choice(lex.VOWELS) for _ in range(n - 1)]
        sylls.append(rng.choice(lex.CONSONANTS) + rng.choice(lex.FINAL_VOWELS))
        parts.append("".join(sylls))
    return tuple(parts)


# ---- the knowledge base ---------------------------------------------------------------------------------


def make_kb(cfg: KBConfig) -> KB:
    """N entities with distinct names, evenly spread home languages, uniform random values, one held-out
    query language per fact (never the home language) and the cs-fixed mix. Deterministic in cfg."""
    rng = random.Random(_hash("kb", cfg.seed))
    seen: set[tuple[str, ...]] = set()
    people = []
    total = cfg.n_entities + cfg.n_finetune_entities
    while len(people) < total:
        name = _random_name(rng)
        if name in seen:
            continue
        seen.add(name)
        i = len(people)
        home = cfg.langs[i % len(cfg.langs)]
        values = {a: rng.randrange(len(lex.VALUES[a]["en"])) for a in lex.ATTRIBUTES}
        heldout = {a: rng.choice([x for x in cfg.langs if x != home]) for a in lex.ATTRIBUTES}
        fixed = {a: rng.choice([x for x in cfg.langs if x != heldout[a]]) for a in lex.ATTRIBUTES}
        people.append(Entity(f"E{i:05d}", i, name, home, values, heldout, fixed))
    return KB(cfg, people[: cfg.n_entities], people[cfg.n_entities :])


def frames(lang: str, split: str) -> list[int]:
    """Indices of the train or test frames of a language."""
    n = len(lex.FRAMES[lang])
    cut = n - lex.TEST_FRAMES
    return list(range(cut)) if split == "train" else list(range(cut, n))


def _name_forms(name: tuple[str, ...], lang: str, latin: bool) -> dict[str, str]:
    written = transliterate(name, "en" if latin else lang)
    forms = {"name": written}
    if lang == "de":
        forms["gen"] = written + "s"  # every part ends in a vowel: Malkos
    if lang == "hy":
        glide = "յ" if name[-1].endswith("o") and not latin else ""  # Հյուգոյի, Գյոթեի
        forms["gen"] = written + glide + "ի"
        forms["dat"] = written + glide + "ին"
    return forms


def render_fact(
    entity: Entity, attribute: str, lang: str, frame: int, latin_names: bool = False, value: int | None = None
) -> tuple[str, int, int]:
    """(sentence, value start, value end) of one fact in `lang` with frame `frame` (`value` overrides the
    entity's own value: the cloze renders every candidate)."""
    template = lex.FRAMES[lang][frame]
    label = lex.ATTRIBUTE_NAMES[attribute][lang]
    fields = _name_forms(entity.name, lang, latin_names)
    if isinstance(label, tuple):
        article, noun = label
        fields.update(attr=noun, Attr=noun, art=article, Art=article.capitalize())
    else:
        fields.update(attr=label, Attr=label[:1].upper() + label[1:])
    marker = "\x00"
    text = template.format(**fields, value=marker)
    start = text.index(marker)
    val = lex.VALUES[attribute][lang][entity.values[attribute] if value is None else value]
    return text.replace(marker, val), start, start + len(val)


def seen_langs(entity: Entity, attribute: str, arm: str, langs: tuple[str, ...]) -> list[str]:
    """The languages in which `arm` renders the fact in training."""
    if arm == "mono":
        return [entity.home]
    if arm == "cs-fixed":
        return [entity.fixed_mix[attribute]]
    if arm in ("parallel", "cs"):
        return [x for x in langs if x != entity.heldout[attribute]]
    raise ConfigError(f"unknown arm {arm!r} (known: {', '.join(ARMS)})")


# ---- documents ------------------------------------------------------------------------------------------


def _document(
    kb: KB, entity: Entity, sentences: list[tuple[str, str, int]], arm: str, round_: int, rng: random.Random
) -> dict:
    """A `documents` row from (attribute, language, frame) sentences in order."""
    parts, segments, pos = [], [], 0
    for k, (attribute, lang, frame) in enumerate(sentences):
        text, _, _ = render_fact(entity, attribute, lang, frame, kb.config.latin_names)
        parts.append(text)
        segments.append(
            {
                "start": pos,
                "end": pos + len(text),
                "lang": lang,
                "lid_lang": None,
                "lid_prob": None,
                "wiki": f"kb-{lang}",
                "page_id": entity.index,
                "rev_id": 0,
                "section_idx": lex.ATTRIBUTES.index(attribute),
                "paragraph_idx": frame,
                "sentence_idx": k,
            }
        )
        pos += len(text) + 1
    langs = list(dict.fromkeys(s["lang"] for s in segments))
    monolingual = arm in ("mono", "parallel", "finetune")
    return {
        "doc_id": f"{_hash(kb.fingerprint, arm, round_, entity.id, langs[0], rng.random()):016x}",
        "concept": entity.id,
        "policy": f"knowledge:{arm}",
        "granularity": "monolingual" if monolingual else "sentence",
        "seed": kb.config.seed,
        "langs": langs,
        "text": " ".join(parts),
        "segments": segments,
        "metrics": None,
    }


def _biography(
    entity: Entity, lang_of: Callable[[str], str], rng: random.Random
) -> list[tuple[str, str, int]]:
    """One rendering: the allowed attributes in a fresh order, each with a fresh train frame."""
    order = list(lex.ATTRIBUTES)
    rng.shuffle(order)
    out = []
    for attribute in order:
        lang = lang_of(attribute)
        if lang:
            out.append((attribute, lang, rng.choice(frames(lang, "train"))))
    return out


def _cycled_language(kb: KB, entity: Entity, attribute: str, round_: int) -> str:
    """The cs arm's language for a fact in a round: each fact goes through its allowed languages in a
    fresh random order every cycle, so every allowed language appears once per cycle of rounds (a new mix
    per document, and no allowed language left out by chance)."""
    allowed = seen_langs(entity, attribute, "cs", kb.config.langs)
    cycle, k = divmod(round_, len(allowed))
    random.Random(_hash(kb.fingerprint, entity.id, attribute, cycle)).shuffle(allowed)
    return allowed[k]


def arm_rounds(kb: KB, arm: str) -> Iterator[list[dict]]:
    """The arm's documents, round after round (each round renders every entity once: once per language for
    `parallel`), entities shuffled within a round; deterministic in the KB."""
    langs = kb.config.langs
    round_ = 0
    while True:
        rng = random.Random(_hash(kb.fingerprint, arm, round_))
        people = list(kb.entities)
        rng.shuffle(people)
        docs = []
        for e in people:
            if arm == "mono":
                docs.append(_document(kb, e, _biography(e, lambda a, e=e: e.home, rng), arm, round_, rng))
            elif arm == "parallel":
                for lang in langs:
                    bio = _biography(e, lambda a, e=e, x=lang: "" if e.heldout[a] == x else x, rng)
                    docs.append(_document(kb, e, bio, arm, round_, rng))
            elif arm == "cs":
                pick = lambda a, e=e, r=round_: _cycled_language(kb, e, a, r)  # noqa: E731
                docs.append(_document(kb, e, _biography(e, pick, rng), arm, round_, rng))
            elif arm == "cs-fixed":
                docs.append(
                    _document(kb, e, _biography(e, lambda a, e=e: e.fixed_mix[a], rng), arm, round_, rng)
                )
            else:
                raise ConfigError(f"unknown arm {arm!r} (known: {', '.join(ARMS)})")
        yield docs
        round_ += 1


def token_target(kb: KB, count_tokens: CountTokens = utf8_bytes) -> int:
    """The tokens every arm gets: `passes` rounds of the parallel arm."""
    rounds = arm_rounds(kb, "parallel")
    return sum(count_tokens(d["text"]) for _ in range(kb.config.passes) for d in next(rounds))


def render_arm(kb: KB, arm: str, target: int, count_tokens: CountTokens = utf8_bytes) -> list[dict]:
    """The arm's documents, drawn round after round until their tokens reach `target` (the last document
    overshoots by less than its own length)."""
    docs, total = [], 0
    for batch in arm_rounds(kb, arm):
        for doc in batch:
            if total >= target:
                return docs
            docs.append(doc)
            total += count_tokens(doc["text"])
    return docs  # unreachable: arm_rounds never ends


def render_arms(
    kb: KB, arms: tuple[str, ...] = ARMS, count_tokens: CountTokens = utf8_bytes
) -> dict[str, list[dict]]:
    """Every arm's documents at the same token target."""
    target = token_target(kb, count_tokens)
    return {arm: render_arm(kb, arm, target, count_tokens) for arm in arms}


def finetune_docs(kb: KB, lang: str, rounds: int) -> list[dict]:
    """Monolingual biographies of the fine-tuning entities (disjoint from every arm's) in `lang`."""
    docs = []
    for r in range(rounds):
        rng = random.Random(_hash(kb.fingerprint, "finetune", lang, r))
        for e in kb.finetune_entities:
            docs.append(_document(kb, e, _biography(e, lambda a, x=lang: x, rng), "finetune", r, rng))
    return docs


# ---- cloze items ----------------------------------------------------------------------------------------


def rendered_triples(docs: list[dict]) -> set[tuple[str, str, str]]:
    """(entity, attribute, language) of every fact the documents render."""
    return {
        (d["concept"], lex.ATTRIBUTES[s["section_idx"]], s["lang"]) for d in docs for s in d["segments"] or []
    }


def cloze_items(
    kb: KB,
    entities: list[Entity] | None = None,
    langs: tuple[str, ...] | None = None,
    arms: dict[str, list[dict]] | None = None,
    frame_split: str = "test",
) -> list[dict]:
    """One query per (entity, attribute, language) with a test frame: the text before and after the value,
    every candidate value's name in that language, the true one's index, and per arm whether the fact was
    rendered in that language in training (`seen`: from the arms' documents when given, else by design).
    `heldout` marks the triples never rendered in any arm. frame_split='train' asks with a training frame
    instead (the probe of whether a model stored the facts it saw)."""
    shown = {arm: rendered_triples(docs) for arm, docs in (arms or {}).items()}
    items = []
    for e in entities if entities is not None else kb.entities:
        for attribute in lex.ATTRIBUTES:
            for lang in langs or kb.config.langs:
                test = frames(lang, frame_split)
                frame = test[_hash(e.id, attribute, lang) % len(test)]
                text, start, end = render_fact(e, attribute, lang, frame, kb.config.latin_names)
                candidates = [
                    render_fact(e, attribute, lang, frame, kb.config.latin_names, value=v)
                    for v in range(len(lex.VALUES[attribute][lang]))
                ]
                items.append(
                    {
                        "entity": e.id,
                        "attribute": attribute,
                        "lang": lang,
                        "prefix": text[:start],
                        "suffix": text[end:],
                        "candidates": [c[0][c[1] : c[2]] for c in candidates],
                        "answer": e.values[attribute],
                        "heldout": e.heldout[attribute] == lang,
                        "seen": {
                            arm: (e.id, attribute, lang) in shown[arm]
                            if arm in shown
                            else lang in seen_langs(e, attribute, arm, kb.config.langs)
                            for arm in ARMS
                        },
                    }
                )
    return items

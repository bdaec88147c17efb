"""build-eval-corpus: wiki documents + XQuAD + SIB-200 as one documents version (pipeline/eval_corpus.py).

    python -c "from flows.eval_corpus import build_eval_corpus; build_eval_corpus(docs='shared-docs')"

The wiki documents come from build-corpus (flows/corpus.py: `<name>-docs`); this flow builds the XQuAD and
SIB-200 documents and merges the three into `<name>-eval-docs`, whose concept-disjoint test split is what
bench/compare.py scores. Deployed as `build-eval-corpus` (prefect.yaml). Each step is a task whose result (a version path) persists under the data root.
"""

from __future__ import annotations

import os
from pathlib import Path

from prefect import flow, task

from flows import events
from flows.policy import persisted, resolve_root, retry_policy
from storage.store import VersionWriter, ref_from_path

SHARED = (
    Path(os.environ.get("WIKIMIX_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))
    / "corpus"
)


def _committed(writer: VersionWriter) -> str:
    """Commit and announce the version (a `wikimix.dataset.committed` event, as every corpus stage does)."""
    path = str(writer.commit().path)
    events.dataset_committed(path)
    return path


@task(**retry_policy(retries=1))
def xquad_docs(root: str, directory: str, langs: list[str], seed: int) -> str:
    from pipeline.xquad import XquadConfig, build_xquad

    cfg = XquadConfig(langs=langs, seed=seed)
    writer = VersionWriter(root, "xquad-docs", params={"step": "xquad", "dir": directory, **cfg.__dict__})
    build_xquad(directory, writer, cfg)
    return _committed(writer)


@task(**retry_policy(retries=1))
def sib200_docs(root: str, directory: str, langs: list[str], sentences_per_doc: int, seed: int) -> str:
    from pipeline.sib200 import Sib200Config, build_sib200

    cfg = Sib200Config(langs=langs, sentences_per_doc=sentences_per_doc, seed=seed)
    writer = VersionWriter(root, "sib200-docs", params={"step": "sib200", "dir": directory, **cfg.__dict__})
    build_sib200(directory, writer, cfg)
    return _committed(writer)


@task(**retry_policy(retries=1))
def merge(root: str, name: str, sources: list[str]) -> str:
    from pipeline.eval_corpus import merge_documents

    refs = [ref_from_path(p) for p in sources]
    writer = VersionWriter(root, f"{name}-eval-docs", params={"sources": sources}, parents=refs)
    merge_documents(refs, writer)
    return _committed(writer)


@flow(name="build-eval-corpus", log_prints=True)
def build_eval_corpus(
    docs: str,
    name: str = "shared",
    xquad: str = str(SHARED / "xquad"),
    xquad_langs: list[str] | None = None,
    sib200: str = str(SHARED / "sib200"),
    sib200_langs: list[str] | None = None,
    sentences_per_doc: int = 24,
    seed: int = 0,
) -> str:
    """Merge the wiki documents version `docs` (DATASET[@VERSION]) with XQuAD and SIB-200 documents;
    returns the path of `<name>-eval-docs`."""
    from training.data import parse_data_spec

    root = resolve_root(None)
    wiki = str(parse_data_spec(docs, root).path)
    xq = persisted(xquad_docs, root)(root, xquad, xquad_langs or [], seed)
    sib = persisted(sib200_docs, root)(root, sib200, sib200_langs or [], sentences_per_doc, seed)
    return persisted(merge, root)(root, name, [wiki, xq, sib])

"""build-corpus's live-wiki fetch against the real local MediaWiki family: every API request waits for the
`wiki-api` rate limit, and a refetch of an unchanged wiki hands on the version already stored (so the
later stages' cache keys do not change)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
from prefect import flow

from flows.corpus import fetch_wiki
from flows.policy import WIKI_API_LIMIT, resolve_root
from storage.store import list_versions, ref_from_path

pytestmark = [pytest.mark.prefect, pytest.mark.mediawiki, pytest.mark.slow]


@flow
def fetch_once(root: str, api_urls: dict[str, str], concepts: str) -> tuple[str, float]:
    start = time.monotonic()
    path = fetch_wiki(root, "live", api_urls, concepts, None)
    return path, time.monotonic() - start


def set_rate_limit(client, per_second: float) -> None:
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    with contextlib.suppress(ObjectNotFound):
        client.delete_global_concurrency_limit_by_name(WIKI_API_LIMIT)
    client.create_global_concurrency_limit(
        GlobalConcurrencyLimitCreate(
            name=WIKI_API_LIMIT, limit=max(1, int(per_second)), slot_decay_per_second=per_second
        )
    )


def fetch_progress(client, key: str) -> float:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    [newest, *_] = client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC
    )
    return float(newest.data)


def test_fetch_is_rate_limited_and_an_unchanged_wiki_reuses_its_version(
    wiki_family, wiki_source, prefect_client, data_root: Path
):
    root = resolve_root(str(data_root))
    concepts = str(wiki_source.concepts)
    try:
        set_rate_limit(prefect_client, 1000.0)
        first, _ = fetch_once(root, wiki_family.api_urls(), concepts)
        ref = ref_from_path(first)
        assert ref.num_rows("pages") >= len(wiki_family.wikis)
        assert set(ref.read("pages", ["lang"]).column("lang").to_pylist()) == set(wiki_family.wikis)
        assert fetch_progress(prefect_client, "live-fetch-progress") == 100.0  # every title resolved

        # one request per second: the refetch (no content requests, at least one query per wiki) waits
        set_rate_limit(prefect_client, 1.0)
        second, seconds = fetch_once(root, wiki_family.api_urls(), concepts)
        assert second == first  # no page changed: the stored version is handed on
        assert len(list_versions(root, "live-wiki")) == 2  # the refetch itself was stored
        assert seconds >= len(wiki_family.wikis) - 2
    finally:
        prefect_client.delete_global_concurrency_limit_by_name(WIKI_API_LIMIT)

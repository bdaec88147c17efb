"""The MediaWiki API client of the crawler: one polite, bounded retry layer over mwclient.

    from pipeline.mwapi import FetchConfig, Stats, WikiSite
    site = WikiSite("https://en.wikipedia.org/w/api.php", FetchConfig(), Stats())
    site.query(meta="siteinfo", siprop="general")

Polite by default: a descriptive User-Agent with contact (FetchConfig.user_agent), `maxlag=5` on every
API call, requests serial, `Retry-After` honoured, bounded retries with exponential back-off, and a
`rate_limit()` hook called before every request (the Prefect flow plugs its rate limit in there).
Also here: finding a wiki's api.php from page URLs (langlinks, interwikimap) and category members.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import mwclient
import mwclient.errors
import requests

from wikimix.errors import ConfigError, WikimixError

DEFAULT_USER_AGENT = "wikimix/0.1 (https://github.com/wikimix/wikimix; wikimix-bot@users.noreply.github.com)"


class FetchError(WikimixError):
    """A request that failed for good (dead host, non-JSON answer, API error, retries exhausted)."""


@dataclass
class FetchConfig:
    """Politeness and batching. Defaults follow the Wikimedia API etiquette."""

    # operators crawling real Wikipedia set their own contact here or in $WIKIMIX_USER_AGENT
    user_agent: str = field(default_factory=lambda: os.environ.get("WIKIMIX_USER_AGENT", DEFAULT_USER_AGENT))
    maxlag: int = 5  # seconds of replication lag above which the wiki asks us to wait
    batch_size: int = 50  # titles / revisions per request (the API's limit for anonymous clients)
    max_retries: int = 4  # after the first attempt; the only retry layer (mwclient's is off)
    backoff_s: float = 1.0  # first wait without a Retry-After; doubles per retry
    max_wait_s: float = 120.0  # cap on any single wait, Retry-After included
    timeout_s: float = 30.0  # per HTTP request
    follow_langlinks: bool = True
    max_rounds: int = 3  # resolve rounds: seeds, then titles found through langlinks

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 50:
            raise ConfigError(f"batch_size must be in 1..50, got {self.batch_size}")
        if self.max_retries < 0 or self.backoff_s < 0 or self.max_wait_s < 0 or self.timeout_s <= 0:
            raise ConfigError("max_retries, backoff_s, max_wait_s must be >= 0 and timeout_s > 0")
        if self.max_rounds < 1:
            raise ConfigError(f"max_rounds must be >= 1, got {self.max_rounds}")
        if "@" not in self.user_agent and "http" not in self.user_agent:
            raise ConfigError("user_agent must name a contact (URL or e-mail), per Wikimedia's policy")


@dataclass
class Stats:
    """Counters of one crawl (also the bench's numbers)."""

    requests: int = 0  # HTTP requests sent, retries included
    content_requests: int = 0  # requests that asked for wikitext
    retries: int = 0
    waits: list[float] = field(default_factory=list)  # seconds slept before retries
    started: float = field(default_factory=time.monotonic)


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


def check_api_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.path.endswith(".php"):
        raise ConfigError(f"not an api.php URL: {url!r} (e.g. https://en.wikipedia.org/w/api.php)")
    return url


class WikiSite(mwclient.Site):
    """An mwclient Site whose raw_call is the crawl's one retry layer.

    mwclient adds maxlag only to index.php calls and retries 25 times with linear back-off; here every
    api.php call carries maxlag, a lagged or overloaded answer is retried after its Retry-After (capped),
    other failures after exponential back-off, at most `max_retries` times, then FetchError.
    """

    def __init__(
        self,
        api_url: str,
        config: FetchConfig,
        stats: Stats,
        rate_limit: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        parts = urlsplit(check_api_url(api_url))
        directory, script = parts.path.rsplit("/", 1)
        self.api_url = api_url
        self.config = config
        self.stats = stats
        self.rate_limit = rate_limit
        self._sleep = sleep
        self._script = script.rsplit(".", 1)[0]
        super().__init__(
            parts.netloc,
            path=directory + "/",
            scheme=parts.scheme,
            max_retries=0,
            clients_useragent=config.user_agent,
            max_lag=config.maxlag,
            do_init=False,
            connection_options={"timeout": config.timeout_s},
        )

    def raw_call(self, script, data, files=None, retry_on_error=True, http_method="POST"):
        url = f"{self.scheme}://{self.host}{self.path}{self._script if script == 'api' else script}{self.ext}"
        data = dict(data)
        attempts = self.config.max_retries + 1 if retry_on_error else 1
        for attempt in range(attempts):
            if script == "api":
                data["maxlag"] = str(self.config.maxlag)  # read per attempt: a config change applies at once
            if self.rate_limit is not None:
                self.rate_limit()
            self.stats.requests += 1
            wait = self.config.backoff_s * 2**attempt
            try:
                resp = self.connection.request(
                    http_method,
                    url,
                    params=data if http_method == "GET" else None,
                    data=data if http_method != "GET" else None,
                    files=files,
                    headers={"Accept-Encoding": "gzip"},
                    timeout=self.config.timeout_s,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                reason = f"cannot reach {url} ({type(exc).__name__})"
            else:
                lagged = "X-Database-Lag" in resp.headers or (
                    resp.status_code == 200
                    and resp.text[:300].lstrip().startswith('{"error"')
                    and '"maxlag"' in resp.text[:300]
                )
                if resp.status_code == 200 and not lagged:
                    return resp.text
                if lagged:
                    reason = f"{self.host}: database lag over maxlag={self.config.maxlag}"
                elif resp.status_code == 429 or 500 <= resp.status_code < 600:
                    reason = f"HTTP {resp.status_code} from {url}"
                else:
                    raise FetchError(f"HTTP {resp.status_code} from {url}")
                wait = _retry_after(resp) if _retry_after(resp) is not None else wait
            if attempt + 1 == attempts:
                raise FetchError(f"{reason}; gave up after {attempts} attempt(s)")
            wait = min(wait, self.config.max_wait_s)
            self.stats.retries += 1
            self.stats.waits.append(wait)
            self._sleep(wait)
        raise AssertionError("unreachable")

    def call(self, **params: Any) -> dict:
        """One API call (JSON, formatversion 2); API errors and non-JSON answers become FetchError."""
        params = {"formatversion": "2", **params}
        method = "GET" if len(urlencode(params)) < 6000 else "POST"  # GET for reads unless too long
        try:
            result = self.raw_api(params.pop("action"), method, **params)
        except mwclient.errors.InvalidResponse as exc:
            head = " ".join(str(exc.response_text if hasattr(exc, "response_text") else exc)[:80].split())
            raise FetchError(f"non-JSON answer from {self.api_url}: {head!r}") from None
        except mwclient.errors.APIDisabledError:
            raise FetchError(f"the API is disabled at {self.api_url}") from None
        if "error" in result:
            err = result["error"]
            raise FetchError(f"API error from {self.host}: {err.get('code')}: {err.get('info', '')}")
        return result

    def query(self, content: bool = False, **params: Any) -> dict:
        """action=query following `continue` to the end; pages merged by id (or title)."""
        merged: dict[Any, dict] = {}
        lists: dict[str, list] = {}
        cont: dict[str, str] = {"continue": ""}
        while True:
            before = self.stats.requests
            result = self.call(action="query", **params, **cont)
            if content:
                self.stats.content_requests += self.stats.requests - before
            q = result.get("query", {})
            for page in q.get("pages", []):
                key = page.get("pageid") or ("title", page.get("title"))
                if key not in merged:
                    merged[key] = page
                    continue
                for name, value in page.items():
                    if isinstance(value, list):
                        merged[key].setdefault(name, []).extend(value)
                    else:
                        merged[key].setdefault(name, value)
            for name, value in q.items():
                if name == "pages":
                    continue
                if isinstance(value, list):  # normalized, redirects, interwikimap, categorymembers, ...
                    lists.setdefault(name, []).extend(value)
                else:
                    lists[name] = value
            if "continue" not in result:
                break
            cont = result["continue"]
        return {"pages": list(merged.values()), **lists}


def api_url_from_page_url(url: str) -> str | None:
    """The api.php of the wiki a page URL (or URL template) belongs to.

    .../index.php?title=X -> .../api.php; https://host/wiki/X -> https://host/w/api.php (the Wikimedia
    layout, whose article path is /wiki/ and script path /w/). None when neither applies.
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    if parts.path.endswith("/index.php"):
        return urlunsplit((parts.scheme, parts.netloc, parts.path[: -len("index.php")] + "api.php", "", ""))
    if "/wiki/" in parts.path:
        prefix = parts.path.split("/wiki/", 1)[0]
        return urlunsplit((parts.scheme, parts.netloc, prefix + "/w/api.php", "", ""))
    return None


def langlink_wikis(langlinks: Iterable[dict]) -> dict[str, str]:
    """{lang: api_url} from langlinks with URLs (llprop=url; formatversion 1 or 2)."""
    found = {}
    for ll in langlinks:
        api = api_url_from_page_url(ll.get("url") or "")
        if api:
            found[ll["lang"]] = api
    return found


def category_titles(
    api_url: str, category: str, config: FetchConfig | None = None, limit: int = 5000
) -> list[str]:
    """Titles of the articles (namespace 0) in a category of one wiki, following `continue`."""
    config = config or FetchConfig()
    site = WikiSite(api_url, config, Stats())
    cmtitle = category if ":" in category else f"Category:{category}"
    result = site.query(list="categorymembers", cmtitle=cmtitle, cmnamespace="0", cmlimit="max")
    titles = [m["title"] for m in result.get("categorymembers", [])][:limit]
    if not titles:
        raise FetchError(f"category {cmtitle!r} has no articles on {api_url}")
    return titles

"""Can a product's sources be had unattended in this run? Asked before any download.

Two things no download can fix: files only a person can fetch (manual entries missing from
manual_dir) and gated hub repositories (terms to accept, a token). `choose_route` picks, for a
product with several routes to the same data, the one this run takes; `gated_problem` asks the
hub whether the run's token may download a gated entry's file (one HEAD request, no bytes).
Both are used by the workflow while it builds its DAG (rules/common.smk `product_unavailable`)
and by preflight, so the two always say the same thing.
"""

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from vlprep.errors import VlprepError

log = logging.getLogger(__name__)

HUB_WEBSITE = "https://huggingface.co"  # where terms are accepted and tokens made, always
TOKENS_PAGE = f"{HUB_WEBSITE}/settings/tokens"
TOKEN_ENV = "HF_TOKEN"
PROBE_TIMEOUT = 10.0


def manual_present(entry: dict, manual_dir: str | Path) -> bool:
    return Path(manual_dir, entry["filename"]).is_file()


def choose_route(
    product: str,
    setting: str,
    choice: str,
    routes: Mapping[str, tuple[str, ...]],
    catalog: Mapping[str, dict],
    manual_dir: str | Path,
) -> str:
    """The route a run of `product` takes: `choice` (the config's `setting`) if it names one;
    for `auto`, the first route made only of manual entries whose files are all in manual_dir,
    else the first route without manual entries."""
    if choice in routes:
        return choice
    if choice != "auto":
        raise VlprepError(
            f"{setting}: {choice!r} is not one of auto, {', '.join(routes)} (for {product})"
        )

    def manual(entry_id: str) -> bool:
        return entry_id in catalog and catalog[entry_id]["kind"] == "manual"

    for name, entries in routes.items():
        by_hand = entries and all(manual(e) for e in entries)
        if by_hand and all(manual_present(catalog[e], manual_dir) for e in entries):
            return name
    for name, entries in routes.items():
        if not any(manual(e) for e in entries):
            return name
    return next(iter(routes))  # every route needs files by hand: the first one says which


def hub_page(entry: dict) -> str:
    prefix = "" if entry.get("repo_type", "dataset") == "model" else f"{entry['repo_type']}s/"
    return f"{HUB_WEBSITE}/{prefix}{entry['repo']}"


def probe_file(entry: dict) -> str | None:
    """The repo file a gated entry is probed with: its archive, or its one literal pattern."""
    if entry.get("archive_file"):
        return entry["archive_file"]
    literal = [p for p in entry.get("include") or [] if not set(p) & set("*?[")]
    return literal[0] if literal else None


def gated_problem(
    entry_id: str,
    entry: dict,
    endpoint: str | None,
    env: Mapping[str, str] | None = None,
    *,
    ask_hub: bool = True,
) -> str | None:
    """What to do before a run can download the gated hub entry, or None if it can.

    One HEAD request for the entry's file, with the run's token if it has one (no bytes): the
    hub answers 401 GatedRepo without a token, 403 GatedRepo with one that has no access (terms
    not accepted, another account's or a revoked token). A hub that lets the request through
    needs nothing more; one that cannot be reached now is taken at the catalog's word (no
    token: said; a token: the download will tell), as is every entry when `ask_hub` is false
    (a dry run, which contacts nothing). The token is never in the text.
    """
    if entry.get("kind") != "hf" or not entry.get("gated"):
        return None
    env = os.environ if env is None else env
    token = env.get(TOKEN_ENV) or None
    refused = _probe(entry, endpoint, token) if ask_hub else None
    if refused == "":
        return None  # the hub let the request through
    page = hub_page(entry)
    where = f"{entry_id} ({entry.get('repo_type', 'dataset')} {entry['repo']})"
    said = f" ({refused})" if refused else ""
    other = ""
    if entry.get("instructions"):
        other = f"\n    or: {' '.join(entry['instructions'].split())}"
    if token is None:
        return (
            f"{where} is gated on the Hugging Face Hub and {TOKEN_ENV} is not set{said}: log "
            f"in, accept its terms at {page}, make a read token at {TOKENS_PAGE}, then "
            f"`export {TOKEN_ENV}=<token>` and rerun.{other}"
        )
    if refused is None:
        return None
    return (
        f"{where} is gated on the Hugging Face Hub and the token in ${TOKEN_ENV} has no access"
        f"{said}: accept its terms at {page} with the account that owns the token (or set "
        f"{TOKEN_ENV} to a read token of an account that did, from {TOKENS_PAGE}), then rerun."
        f"{other}"
    )


def _probe(entry: dict, endpoint: str | None, token: str | None) -> str | None:
    """Why the hub refuses the entry's file to `token` (None: anonymous), "" if it serves it,
    None if it cannot be asked (unreachable, no file to ask for, an unexpected answer)."""
    from vlprep.hub import HfApi, _scrub, constants  # sets huggingface_hub's offline knobs

    endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
    rel = probe_file(entry)
    if rel is None or not reachable(endpoint):
        log.warning("%s: access to %s not checked on the hub at %s", entry["id"], rel, endpoint)
        return None
    from huggingface_hub import hf_hub_url
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    url = hf_hub_url(
        entry["repo"], rel, repo_type=entry.get("repo_type"), revision=entry.get("revision"),
        endpoint=endpoint,
    )  # fmt: skip
    api = HfApi(endpoint=endpoint, token=token or False, library_name="vlprep")
    try:
        api.get_hf_file_metadata(url=url, timeout=PROBE_TIMEOUT)
    except GatedRepoError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        return f"the hub answered {status or 'GatedRepo'}: {_scrub(_first(err), token)}"
    except RepositoryNotFoundError as err:
        return f"the hub answered: no such repo for this token: {_scrub(_first(err), token)}"
    except Exception as err:  # noqa: BLE001 - anything else is for the download to report
        log.warning("%s: access not checked on the hub: %s", entry["id"], _scrub(str(err), token))
        return None
    return ""


def reachable(url: str) -> bool:
    """One quick request, so an unreachable hub costs seconds, not the client's retries."""
    import requests

    try:
        requests.head(url, timeout=5)
    except requests.RequestException:
        return False
    return True


def _first(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines[:2])[:300] if lines else type(err).__name__

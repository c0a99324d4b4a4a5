"""The catalog: one entry per remote file, validated before any job runs."""

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import yaml

from vlprep.errors import CatalogError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "catalog.schema.yaml"
# libyaml's loader when PyYAML was built with it: the catalog and the schemas are read while
# every workflow is parsed, and the pure-Python loader is ten times slower.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(stream):
    """yaml.safe_load, through libyaml when it is there."""
    return yaml.load(stream, Loader=YAML_LOADER)


def _load_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return read_yaml(f)
    except FileNotFoundError:
        raise CatalogError(f"{path}: no such catalog file (set `catalog:` in the config)") from None
    except yaml.YAMLError as err:
        raise CatalogError(f"{path}: not valid YAML: {err}") from None


def _describe(error: jsonschema.ValidationError) -> str:
    where = list(error.absolute_path)
    if not where:
        return error.message
    entry, *keys = where
    at = f"entry '{entry}'" + (f", key '{'.'.join(map(str, keys))}'" if keys else "")
    return f"{at}: {error.message}"


def default_filename(url: str) -> str:
    """The stored name of a file: the last path segment of its URL."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    if not name or name in {".", ".."}:
        raise CatalogError(f"{url}: cannot derive a file name; give the entry a `filename:`")
    return name


def load_catalog(path: str | Path, schema_path: Path = SCHEMA_PATH) -> dict[str, dict]:
    """Read and check the catalog; return entries with defaults filled in.

    Every problem is reported at once, each naming the entry and key, so a typo or a malformed
    checksum is fixed in one pass.
    """
    path = Path(path)
    data = _load_yaml(path)
    schema = _load_yaml(schema_path)
    if data is None:
        data = {}
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n".join(f"  - {_describe(e)}" for e in errors)
        raise CatalogError(f"{path}: {len(errors)} problem(s) in the catalog:\n{lines}")
    entries = {}
    for entry_id, entry in data.items():
        entry = dict(entry)
        if entry["kind"] == "hf":
            entry.setdefault("repo_type", "dataset")
        elif "url" in entry:
            entry.setdefault("filename", default_filename(entry["url"]))
        entry.setdefault("archive", "none")
        entry.setdefault("max_unpack_ratio", 8)
        entry["id"] = entry_id
        entries[entry_id] = entry
    return entries

"""The catalog: one entry per remote file, validated before any job runs."""

import math
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


def _finite_number(checker, instance) -> bool:
    """JSON Schema's number without NaN and the infinities (YAML's .nan, .inf): they pass
    every bound, and a size limit computed from one crashes the job that uses it."""
    base = jsonschema.Draft202012Validator.TYPE_CHECKER
    finite = not isinstance(instance, float) or math.isfinite(instance)  # an int always is
    return base.is_type(instance, "number") and finite


# The validator of the catalog and the config: Draft 2020-12 with finite numbers.
Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("number", _finite_number),
)


def read_yaml(stream):
    """yaml.safe_load, through libyaml when it is there."""
    return yaml.load(stream, Loader=YAML_LOADER)


def _load_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return read_yaml(f)
    except FileNotFoundError:
        raise CatalogError(f"{path}: no such catalog file (set `catalog:` in the config)") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise CatalogError(f"{path}: not valid YAML (UTF-8 text): {err}") from None


def _describe(error: jsonschema.ValidationError) -> str:
    where = list(error.absolute_path)
    if not where:
        return error.message
    entry, *keys = where
    at = f"entry '{entry}'" + (f", key '{'.'.join(map(str, keys))}'" if keys else "")
    return f"{at}: {error.message}"


def default_filename(url: str) -> str:
    """The stored name of a file: the last path segment of its URL."""
    try:
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    except ValueError as err:  # such as an unclosed `[` of an IPv6 host
        raise CatalogError(f"{url}: not a valid URL ({err})") from None
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
    validator = Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    problems = [_describe(e) for e in errors]
    # YAML reads `2017:` or `null:` as a number or None, which the schema's name pattern does
    # not see (and jsonschema loses the place of an error under a None key)
    if isinstance(data, dict):
        problems += [
            f"entry {key!r}: an entry id must be text" for key in data if not isinstance(key, str)
        ]
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise CatalogError(f"{path}: {len(problems)} problem(s) in the catalog:\n{lines}")
    entries = {}
    for entry_id, entry in data.items():
        entry = dict(entry)
        if entry["kind"] == "hf":
            entry.setdefault("repo_type", "dataset")
        elif "url" in entry and "filename" not in entry:
            try:
                entry["filename"] = default_filename(entry["url"])
            except CatalogError as err:
                raise CatalogError(f"{path}: entry '{entry_id}', key 'url': {err}") from None
        entry.setdefault("archive", "none")
        entry.setdefault("max_unpack_ratio", 8)
        entry["id"] = entry_id
        entries[entry_id] = entry
    return entries

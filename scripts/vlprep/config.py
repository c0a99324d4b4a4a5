"""The workflow's config, checked against config/config.schema.yaml before any job runs.

This replaces `snakemake.utils.validate`, which stops at the first problem and, for an unknown
key, prints the whole schema. Here every problem is reported at once, one line each, naming
its key; an unknown key lists the keys allowed beside it and the closest one. Schema defaults
are filled in exactly as `validate(..., set_default=True)` does, since the rules read them.

`--config` hands over nested values as strings (Snakemake parses them with YAML's BaseLoader),
so a string that reads as what the schema wants (a number, a boolean, null, a mapping or a list)
is converted first; anything else is still an error naming the key.
"""

import copy
import difflib
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema import validators
from snakemake.exceptions import WorkflowError

from vlprep.catalog import Validator, read_yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "config.schema.yaml"

_NULLS = ("null", "~", "")
_BOOLEANS = {"true": True, "false": False}
# A value can only become a mapping or list by parsing, which may leave strings inside it to
# convert in turn; each round converts one level, and the schema nests no deeper than this.
_MAX_ROUNDS = 8


def _with_defaults(validator_class: type) -> type:
    """A validator that fills in each property's `default` before checking the properties,
    as `snakemake.utils.validate` does (a filled-in mapping gets its own defaults in turn)."""
    check_properties = validator_class.VALIDATORS["properties"]

    def fill_then_check(validator, properties, instance, schema) -> Iterator:
        if isinstance(instance, dict):  # a wrong type is reported by `type`, not crashed on
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from check_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": fill_then_check})


def _parsed(text: str, types: list[str]) -> tuple[bool, Any]:
    """(True, value) if `text` reads as one of the JSON types the schema wants there."""
    stripped = text.strip()
    for kind in types:
        if kind in ("integer", "number"):
            try:
                return True, int(stripped)
            except ValueError:
                pass
        if kind == "number":
            try:
                number = float(stripped)
            except ValueError:
                continue
            if math.isfinite(number):
                return True, number
        elif kind == "boolean" and stripped.lower() in _BOOLEANS:
            return True, _BOOLEANS[stripped.lower()]
        elif kind == "null" and stripped.lower() in _NULLS:
            return True, None
        elif kind in ("object", "array"):
            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            if isinstance(value, dict if kind == "object" else list):
                return True, value
    return False, None


def _convert(config: dict, error: jsonschema.ValidationError) -> bool:
    """Replace the string a type error is about with what it reads as; False if it reads as
    nothing the schema wants there (or the error is not about a string's type)."""
    if error.validator != "type" or not isinstance(error.instance, str):
        return False
    if not error.absolute_path:  # the config itself: Snakemake always hands over a mapping
        return False
    types = error.validator_value
    ok, value = _parsed(error.instance, [types] if isinstance(types, str) else list(types))
    if not ok:
        return False
    *parents, key = error.absolute_path
    holder = config
    for step in parents:
        holder = holder[step]
    holder[key] = value
    return True


def _key_path(path) -> str:
    return ".".join(map(str, path))


def _unknown_keys(error: jsonschema.ValidationError) -> list[tuple[str, str]]:
    """(key path, what is wrong) per key that `additionalProperties: false` refuses."""
    allowed = sorted(error.schema.get("properties", {}))
    patterns = list(error.schema.get("patternProperties", {}))
    where = _key_path(error.absolute_path)
    problems = []
    for key in error.instance:
        if key in allowed or any(re.search(p, str(key)) for p in patterns):
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        at = f"under {where}" if where else "at the top level"
        path = _key_path([*error.absolute_path, key])
        problems.append((path, f"unknown key; allowed {at}: {', '.join(allowed)}{hint}"))
    return problems


def _describe(error: jsonschema.ValidationError) -> list[tuple[str, str]]:
    """(key path, what is wrong) per problem behind one validation error."""
    if error.validator == "additionalProperties" and error.validator_value is False:
        return _unknown_keys(error)
    return [(_key_path(error.absolute_path) or "(the config itself)", error.message)]


def product_keys() -> dict[str, dict]:
    """The schema of `products:`, from the registry: one boolean per product, defaulting to
    whether `all` builds it."""
    from vlprep.products import PRODUCTS

    return {
        name: {"type": "boolean", "default": product.in_all, "description": product.about}
        for name, product in PRODUCTS.items()
    }


def validate_config(config: dict, schema_path: str | Path = SCHEMA_PATH) -> None:
    """Check the merged config (config.yaml, --configfile, --config) in place: convert strings
    that read as what the schema wants, fill in defaults, and raise a WorkflowError listing
    every problem, one line each, if any is left."""
    with open(schema_path, encoding="utf-8") as f:
        schema = read_yaml(f)
    schema["properties"]["products"]["properties"] = product_keys()
    validator = _with_defaults(Validator)(schema)
    errors = list(validator.iter_errors(config))
    for _ in range(_MAX_ROUNDS):
        if not any([_convert(config, error) for error in errors]):  # a list: convert them all
            break
        errors = list(validator.iter_errors(config))
    problems = sorted(problem for error in errors for problem in _describe(error))
    if problems:
        lines = "\n".join(f"  - {where}: {what}" for where, what in problems)
        raise WorkflowError(
            f"{len(problems)} problem(s) in the config (config/config.yaml with any "
            f"--configfile and --config merged over it; keys in config/README.md):\n{lines}"
        )

"""Fuzzed catalogs and configs: a mutation of the real one either loads, or is refused with the
project's error (CatalogError; the config check's WorkflowError, which Snakemake prints) and a
message naming the file and the key; never a bare KeyError/TypeError/ValueError traceback."""

import copy
import math
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import event, example, given
from hypothesis import strategies as st
from snakemake.exceptions import WorkflowError

from tests.fuzzing import fuzz
from vlprep.catalog import load_catalog
from vlprep.config import validate_config
from vlprep.errors import CatalogError

REPO = Path(__file__).resolve().parents[2]
CATALOG = yaml.safe_load((REPO / "config" / "catalog.yaml").read_text())
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
# one entry of each kind (and with and without an archive), so that every branch of the
# schema's conditions is met; the whole catalog is ten times slower to check
SAMPLE = {}
for _entry_id, _entry in CATALOG.items():
    _shape = (_entry["kind"], _entry.get("archive", "none") == "none", "nested" in _entry)
    if _shape not in {
        (e["kind"], e.get("archive", "none") == "none", "nested" in e) for e in SAMPLE.values()
    }:
        SAMPLE[_entry_id] = _entry


# Keys as someone might type them; not control characters, which would break the one line per
# problem of the messages (keys are printed as they are)
KEY_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=8)
# What YAML can put where a value was: every scalar type it resolves, odd strings, containers.
YAML_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(),  # nan and inf too (.nan, .inf)
    st.dates(),
    st.text(max_size=15),
    st.sampled_from(
        [
            "",
            "none",
            "zip",
            "http",
            "hf",
            "http://[x/a.zip",  # urlsplit: Invalid IPv6 URL
            "http://h/",
            "http://h/..",
            "https://h/%2e%2e",
            "s3://b/k",
            "s3://",
            "../x",
            "a/b",
            "0" * 64,
            "0" * 40,
            "1e3",
            "true",
            "~",
        ]
    ),
    st.lists(st.text(max_size=5), max_size=2),
    st.dictionaries(KEY_TEXT, st.integers(), max_size=2),
    # a new list each time: a mutation may write into it
    st.builds(lambda: [{"member": "a.tar", "archive": "tar"}]),
)
YAML_KEYS = st.one_of(
    st.sampled_from(["url", "kind", "filename", "archive", "archive_file", "nested", "size"]),
    st.sampled_from(["revision", "repo", "sha256", "md5", "license", "max_unpack_ratio"]),
    KEY_TEXT,
    st.integers(),
    st.none(),
    st.booleans(),
)


def paths_of(value, prefix=()) -> list[tuple]:
    """Every key path into nested dicts and lists."""
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths_of(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths_of(inner, (*prefix, index))
    return found


@st.composite
def mutated(draw, document: dict) -> tuple[object, list[tuple]]:
    """A deep copy of `document` with a few mutations: a value replaced, a key dropped, a
    key added, or the whole thing replaced; returns it and the paths touched."""
    data = copy.deepcopy(document)
    touched = []
    for _ in range(draw(st.integers(1, 3))):
        paths = paths_of(data)
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
        if not path:
            if how == "replace":
                data = draw(YAML_VALUES)
                touched.append(())
            continue
        *parents, key = path
        holder = data
        for step in parents:
            holder = holder[step]
        if how == "replace":
            holder[key] = draw(YAML_VALUES)
        elif how == "drop":
            del holder[key]
        elif isinstance(holder, dict):
            new = draw(YAML_KEYS)
            holder[new] = draw(YAML_VALUES)
            path = (*parents, new)
        touched.append(tuple(path))
    return data, touched


def yaml_text(data) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def named(message: str, touched: list[tuple]) -> bool:
    """Does the message name one of the mutated places (its entry, or the top level)?"""
    return any(not path or str(path[0]) in message for path in touched)


@fuzz(120)
@given(case=mutated(SAMPLE))
@example(case=({"e": {**next(iter(SAMPLE.values())), "url": "http://[x/a.zip"}}, [("e",)]))
@example(
    case=(
        {"e": {**next(iter(SAMPLE.values())), "url": "https://h/", "filename": "a.zip"}},
        [("e",)],
    )
)
@example(case=({"e": {**next(iter(SAMPLE.values())), "max_unpack_ratio": math.nan}}, [("e",)]))
@example(case=({"e": {**next(iter(SAMPLE.values())), "max_unpack_ratio": math.inf}}, [("e",)]))
@example(case=({"e": {**next(iter(SAMPLE.values())), "max_unpack_ratio": 10**400}}, [("e",)]))
@example(case=({**SAMPLE, None: False}, [(None,)]))
@example(case=({**SAMPLE, 2017: next(iter(SAMPLE.values()))}, [(2017,)]))
def test_a_mutated_catalog_loads_or_is_refused_naming_the_entry(tmp_path, case):
    data, touched = case
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml_text(data), encoding="utf-8")
    try:
        entries = load_catalog(path)
    except CatalogError as err:
        message = str(err)
        assert str(path) in message, message
        assert named(message, touched), message
        event("refused")
        return
    event("loaded")
    for entry_id, entry in entries.items():
        assert isinstance(entry_id, str)  # rules name files and wildcards by it
        assert entry["id"] == entry_id and "archive" in entry
        # what extraction computes its size limit from: a NaN or infinite ratio would crash it
        ratio = entry["max_unpack_ratio"]
        assert ratio > 0 and (isinstance(ratio, int) or math.isfinite(ratio))
        if entry["kind"] != "hf":
            assert "/" not in entry.get("filename", "")


LINE_EDITS = st.sampled_from(["drop", "dedent", "indent", "tab", "duplicate", "insert"])
INSERTS = st.sampled_from(
    [
        "x: [1, 2",
        "- a",
        "&a b: *a",
        "k: !!python/object:os.system x",
        "k: !!binary AAAA",
        "k: {a: 1, a: 2}",
        "'unclosed",
        "? complex\n: key",
        "<<: {kind: http}",
        "url: http://[x/a.zip",
        "\ufeffbom: 1",
        "\x00",
    ]
)


@fuzz(150)
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), LINE_EDITS, INSERTS), max_size=4))
@example(edits=[(0, "insert", "\x00")])
def test_a_catalog_edited_as_text_loads_or_is_refused_naming_the_file(tmp_path, edits):
    """Line-level damage (what a hand edit does): YAML errors and schema errors alike come
    back as a CatalogError naming the file."""
    lines = yaml_text(SAMPLE).splitlines()
    for at, how, text in edits:
        i = at % (len(lines) + 1)
        line = lines[i] if i < len(lines) else ""
        if how == "drop" and i < len(lines):
            del lines[i]
        elif how == "dedent":
            lines[i:i + 1] = [line.lstrip()]  # fmt: skip
        elif how == "indent":
            lines[i:i + 1] = ["   " + line]  # fmt: skip
        elif how == "tab":
            lines[i:i + 1] = ["\t" + line]  # fmt: skip
        elif how == "duplicate":
            lines[i:i] = [line]
        else:
            lines[i:i] = [text]
    path = tmp_path / "catalog.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        load_catalog(path)
        event("loaded")
    except CatalogError as err:
        assert str(path) in str(err)
        event("refused")


@pytest.mark.parametrize("raw", [b"coco: \xff\n", b"\xff\xfe", b"a: 1\n" + b"\x80" * 3])
def test_a_catalog_that_is_not_utf8_is_refused_naming_the_file(tmp_path, raw):
    path = tmp_path / "catalog.yaml"
    path.write_bytes(raw)
    with pytest.raises(CatalogError, match=re.escape(str(path))):
        load_catalog(path)


# ---- the config -----------------------------------------------------------------------------

CONFIG_VALUES = st.one_of(
    YAML_VALUES,
    # what --config hands over: strings, Snakemake having parsed them with YAML's BaseLoader
    st.sampled_from(["1", "0", "-3", "2.5", "nan", "inf", "true", "False", "null", "{}", "[]"]),
    st.sampled_from(["{retries: 2}", "{a: 1}", "[1, 2]", "{", "- x", "1e400", "99" * 2200]),
)


@st.composite
def mutated_config(draw) -> tuple[object, list[tuple]]:
    data, touched = draw(mutated(CONFIG))
    # and a few values as --config strings
    for path in draw(st.lists(st.sampled_from(paths_of(data)[1:] or [()]), max_size=2)):
        if not path:
            continue
        *parents, key = path
        holder = data
        for step in parents:
            holder = holder[step]
        if not isinstance(holder[key], dict | list):
            holder[key] = draw(CONFIG_VALUES)
            touched.append(tuple(path))
    return data, touched


@fuzz(120)
@given(case=mutated_config())
@example(case=({**CONFIG, "fetch": {"retries": "9" * 5000}}, [("fetch", "retries")]))
@example(case=({**CONFIG, 7: 1, None: 2}, [(7,), (None,)]))
@example(case=({**CONFIG, "fetch": {"timeout": math.nan}}, [("fetch", "timeout")]))
@example(case=({**CONFIG, "fetch": {"max_backoff": math.inf}}, [("fetch", "max_backoff")]))
def test_a_mutated_config_passes_or_each_problem_names_its_key(case):
    """validate_config (every problem at once, one line each, naming its key) on config.yaml
    with values replaced, dropped, added and given as --config strings."""
    config, touched = case
    config = copy.deepcopy(config)  # validate_config fills defaults in: keep CONFIG as it is
    try:
        validate_config(config)
    except WorkflowError as err:
        message = str(err)
        lines = message.splitlines()[1:]
        assert lines and all(line.startswith("  - ") for line in lines), message
        assert "Failed validating" not in message  # the problem, not the schema
        touched_keys = {".".join(map(str, path)) for path in touched if path}
        for line in lines:
            body = line.removeprefix("  - ")
            where = body.split(": ", 1)[0]  # (a key may itself hold ": ")
            # the mutated key, one inside it, or the mapping that lost a required one
            assert (
                body.startswith("(the config itself)")
                or any(body.startswith(k) for k in touched_keys)
                or any(k.startswith(where) for k in touched_keys)
            ), (body, touched_keys)
        event("refused")
        return
    event("passed")
    assert isinstance(config, dict)
    # a NaN or infinite timeout, backoff or floor passes every bound: it must not pass
    numbers = [config]
    while numbers:
        value = numbers.pop()
        if isinstance(value, dict | list):
            numbers += value.values() if isinstance(value, dict) else value
        assert not isinstance(value, float) or math.isfinite(value), config
    again = copy.deepcopy(config)
    validate_config(again)  # defaults filled in: checking again changes nothing
    assert again == config

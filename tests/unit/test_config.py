"""The config check: one line per problem naming its key, never the schema; numbers given as
strings by --config accepted; defaults filled in as snakemake.utils.validate fills them."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.cli import parse_config
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

from standin.world import write_config
from vlprep.config import SCHEMA_PATH, product_keys, validate_config

REPO = Path(__file__).resolve().parents[2]
DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def merged(*entries: str, base: dict = DEFAULT) -> dict:
    """config.yaml with `--config` entries over it, exactly as Snakemake merges them."""
    config = copy.deepcopy(base)
    update_config(config, parse_config(list(entries)))
    return config


def problems(config: dict) -> list[str]:
    with pytest.raises(WorkflowError) as err:
        validate_config(config)
    message = str(err.value)
    assert "Failed validating" not in message and "$schema" not in message  # no schema dump
    return [line.removeprefix("  - ") for line in message.splitlines()[1:]]


def test_unknown_top_level_key_lists_allowed_keys_and_closest():
    [line] = problems(merged("lnk_mode=copy"))
    assert line.startswith(
        "lnk_mode: unknown key; allowed at the top level: catalog, compare_with, cosmos,"
    )
    assert "url_lists" in line and line.endswith("did you mean 'link_mode'?")


def test_unknown_nested_key_is_named_by_its_path():
    [line] = problems(merged('url_lists={"laion115m": {"rows_per_prt": 1000000}}'))
    assert line.startswith("url_lists.laion115m.rows_per_prt: unknown key; allowed under ")
    assert "url_lists.laion115m: image_size, max_rows" in line
    assert line.endswith("did you mean 'rows_per_part'?")


def test_unknown_key_without_close_match_has_no_suggestion():
    [line] = problems(merged("zzzz=1"))
    assert line.startswith("zzzz: unknown key") and "did you mean" not in line


def test_every_problem_is_reported_at_once():
    config = merged("typo_key=1", "link_mode=move", "fetch={retries: many}")
    lines = problems(config)
    assert len(lines) == 3
    assert lines[0].startswith("fetch.retries: 'many' is not of type 'integer'")
    assert lines[1].startswith("link_mode: 'move' is not one of")
    assert lines[2].startswith("typo_key: unknown key")


def test_wrong_type_names_the_key():
    [line] = problems(merged('url_lists={"sbu": {"threads": "lots"}}'))
    assert line == "url_lists.sbu.threads: 'lots' is not of type 'integer'"


def test_numbers_and_booleans_given_as_strings_by_config_are_converted():
    # Snakemake reads a nested --config value with YAML's BaseLoader: every scalar a string.
    entries = [
        'url_lists={"laion115m": {"rows_per_part": 1000000, "success_floor": 0.25}}',
        'url_lists={"sbu": {"max_rows": null}}',
        "fetch={retries: 2, timeout: 7.5, try_original: false}",
        "fetch_on_login_node=false",
    ]
    assert parse_config(entries[:1])["url_lists"]["laion115m"]["rows_per_part"] == "1000000"
    config = merged(*entries)
    validate_config(config)
    assert config["url_lists"]["laion115m"]["rows_per_part"] == 1000000
    assert config["url_lists"]["laion115m"]["success_floor"] == 0.25
    assert config["url_lists"]["sbu"]["max_rows"] is None
    assert config["fetch"] == {
        "retries": 2,
        "timeout": 7.5,
        "max_backoff": 120,
        "try_original": False,
        "connections": 16,
    }
    assert config["fetch_on_login_node"] is False


def test_a_mapping_given_as_a_string_is_parsed():
    config = merged()
    config["gdrive"] = "{proxy: 'http://proxy:3128'}"
    validate_config(config)
    assert config["gdrive"] == {"proxy": "http://proxy:3128", "ca_bundle": None}


def test_a_string_that_is_not_a_number_is_still_an_error():
    [line] = problems(merged('url_lists={"laion115m": {"rows_per_part": 1e6}}'))
    assert line == "url_lists.laion115m.rows_per_part: '1e6' is not of type 'integer'"


def test_strings_where_strings_are_allowed_are_left_alone():
    config = merged('layouts={"g3m": 2024}', "manual_dir=null")
    validate_config(config)
    assert config["layouts"]["g3m"] == "2024"
    assert config["manual_dir"] == "null"  # a directory name: `--config manual_dir=` is null


def demo_config(tmp_path: Path) -> dict:
    path = write_config(
        tmp_path / "demo.yaml",
        data_root=tmp_path / "data",
        catalog=REPO / "config" / "catalog.yaml",
        base_url="http://127.0.0.1:9",
        hub_url="http://127.0.0.1:9",
        s3_url="http://127.0.0.1:9",
        drive=("http://127.0.0.1:9", str(tmp_path / "ca.pem")),
        products={"sbu": True},
    )
    config = copy.deepcopy(DEFAULT)
    update_config(config, yaml.safe_load(path.read_text()))
    return config


@pytest.mark.parametrize("which", ["default", "demo", "bare"])
def test_defaults_are_filled_in_as_snakemake_validate_fills_them(tmp_path, which):
    if which == "default":
        config = copy.deepcopy(DEFAULT)
    elif which == "demo":
        config = demo_config(tmp_path)
    else:  # only what has no default
        config = {"url_lists": {name: {"rows_per_part": 10} for name in DEFAULT["url_lists"]}}
    expected = copy.deepcopy(config)
    # the schema as vlprep.config completes it: the product keys come from the registry
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    schema["properties"]["products"]["properties"] = product_keys()
    completed = tmp_path / "schema.yaml"
    completed.write_text(yaml.safe_dump(schema, sort_keys=False))
    validate(expected, str(completed), set_default=True)
    validate_config(config)
    assert config == expected
    assert config["gdrive"].keys() == {"proxy", "ca_bundle"} and "try_original" in config["fetch"]


def test_the_schema_is_the_one_source_of_defaults():
    """config.yaml only shows them: every value it holds is what the schema fills into an
    empty config (products from the registry), so the two cannot drift apart."""
    from vlprep.config import validate_config as check

    shown = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    filled: dict = {}
    check(filled)

    def same(shown_part, filled_part, where):
        for key, value in shown_part.items():
            assert key in filled_part, f"{where}{key}: shown in config.yaml, no schema default"
            if isinstance(value, dict) and value:
                same(value, filled_part[key], f"{where}{key}.")
            else:
                assert filled_part[key] == value, f"{where}{key}: {value} vs {filled_part[key]}"

    same(shown, filled, "")


def test_a_url_list_left_out_is_planned_with_its_own_defaults():
    config = {"url_lists": {"laion115m": {"processes": 3}}}
    validate_config(config)
    lists = config["url_lists"]
    assert lists["laion115m"]["rows_per_part"] == 1_000_000 and lists["laion115m"]["processes"] == 3
    assert lists["laion_coco"]["rows_per_part"] == 800_000
    assert lists["laion_coco"]["max_rows"] == 16_080_000
    assert lists["nocaps_val"]["rows_per_part"] == 5_000 and lists["sbu"]["success_floor"] == 0.4

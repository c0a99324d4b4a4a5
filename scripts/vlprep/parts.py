"""How a URL list is cut into img2dataset parts: row ranges and shard ids, written once.

Each part is one job of `rows_per_part` rows whose shards are numbered from its first row, so
shard names do not depend on how many jobs ran. The workflow plans with these while it builds
the DAG (rules/common.smk), the parts run with them (vlprep.i2d re-exports them), and the
benchmarks and tests call the same functions. No dependency beyond the standard library: the
workflow imports this module while it plans.
"""

from typing import Any

from vlprep.errors import ConversionError


def part_bounds(part: int, rows_per_part: int, samples_per_shard: int) -> tuple[int, int, int]:
    """(start row, stop row, first shard id) of part `part`."""
    if rows_per_part <= 0 or samples_per_shard <= 0 or rows_per_part % samples_per_shard:
        raise ConversionError(
            f"rows_per_part ({rows_per_part}) must be a positive multiple of "
            f"number_sample_per_shard ({samples_per_shard}), or shard names would not line up"
        )
    start = part * rows_per_part
    return start, start + rows_per_part, start // samples_per_shard


# The img2dataset arguments the config may tune (url_lists.<dataset>), over the consumer's own.
TUNABLE = ("image_size", "timeout", "retries")


def samples_per_shard(consumer_args: dict[str, Any], settings: dict[str, Any]) -> int:
    """Rows per shard: the config's, else the consumer's own (MiniGPT-4's 10,000...)."""
    return settings.get("samples_per_shard") or consumer_args["number_sample_per_shard"]


def job_args(consumer_args: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """The img2dataset arguments of a part: the consumer's script's, tuned by the config."""
    tuned = {key: settings[key] for key in TUNABLE if settings.get(key) is not None}
    tuned["number_sample_per_shard"] = samples_per_shard(consumer_args, settings)
    return {**consumer_args, **tuned}


def planned_rows(dataset: str, bound: int | None, max_rows: int | None) -> int:
    """Rows the parts cover: the catalog's bound on the list (`rows`), cut to `max_rows`."""
    known = [rows for rows in (bound, max_rows) if rows is not None]
    if not known:
        raise ConversionError(
            f"{dataset}: the parts cannot be planned: set `rows` in its catalog entry (an upper "
            f"bound of the list's rows) or url_lists.{dataset}.max_rows in the config"
        )
    return min(known)


def part_count(rows: int, rows_per_part: int, per_shard: int) -> int:
    """How many parts of `rows_per_part` rows cover `rows` (checked as part_bounds checks)."""
    part_bounds(0, rows_per_part, per_shard)
    return -(-rows // rows_per_part)


def part_plan(index: int, rows: int, rows_per_part: int, per_shard: int) -> dict[str, Any]:
    """Rows [start, stop) of part `index` of a list of `rows` rows, the id of its first shard,
    and whether it is the last part."""
    start, stop, shard_offset = part_bounds(index, rows_per_part, per_shard)
    return {
        "start": start,
        "stop": min(stop, rows),
        "shard_offset": shard_offset,
        "last": index == part_count(rows, rows_per_part, per_shard) - 1,
    }

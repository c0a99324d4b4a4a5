"""MiniGPT-4's `dataset/convert_laion.py`, verbatim but for the paths, as a function.

Upstream:

    import json
    import csv

    # specify input and output file paths
    input_file = 'laion_synthetic_filtered_large.json'
    output_file = 'laion_synthetic_filtered_large.tsv'

    # load JSON data from input file
    with open(input_file, 'r') as f:
        data = json.load(f)

    # extract header and data from JSON
    header = data[0].keys()
    rows = [x.values() for x in data]

    # write data to TSV file
    with open(output_file, 'w') as f:
        writer = csv.writer(f, delimiter='\\t')
        writer.writerow(header)
        writer.writerows(rows)

It loads the whole array (tens of GB of Python objects for the real 20 GB file), takes the
header from the first object and writes each object's values in that object's own key order.
Kept faithful, bugs included, as the reference for tests and benchmarks.
"""

import csv
import json
from pathlib import Path


def seed_convert(src: str | Path, dest: str | Path) -> None:
    """Convert `src` (BLIP JSON array) to `dest` (TSV) exactly as the seed script does."""
    with open(src) as f:
        data = json.load(f)

    header = data[0].keys()
    rows = [x.values() for x in data]

    with open(dest, "w") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(header)
        writer.writerows(rows)


if __name__ == "__main__":
    import sys

    seed_convert(sys.argv[1], sys.argv[2])

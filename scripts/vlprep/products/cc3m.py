"""CC3M as webdataset shards from the hub, split the way nxtp's loader reads them (g3m/cc3m)."""

from vlprep.products.base import Family, Product, Samples

# the shards of each nxtp folder, by file-name pattern in the hub repository
CC3M_SPLITS = {"cc3m": "cc3m-train-*.tar", "cc3m_valid": "cc3m-validation-*.tar"}

FAMILY = Family(
    products=[
        Product(
            "cc3m",
            bundles=("g3m",),
            files=tuple(f"{{g3m}}/cc3m/{folder}" for folder in CC3M_SPLITS),
            entries=("cc3m_wds",),
            checks=("g3m",),
            about="g3m/cc3m/{cc3m,cc3m_valid} (CC3M webdataset)",
            samples=Samples("wds", "{g3m}/cc3m/cc3m"),
        )
    ]
)

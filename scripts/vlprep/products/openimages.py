"""Open Images V7 validation with its Localized Narratives, as nxtp's evaluation tars
(g3m/openimages_v7/openimages_v7_valid)."""

from vlprep.products.base import Family, Product, Samples

FAMILY = Family(
    products=[
        Product(
            "openimages_v7_valid",
            bundles=("g3m",),
            files=("{g3m}/openimages_v7/openimages_v7_valid",),
            entries=("openimages_val", "openimages_val_narratives"),
            checks=("g3m",),
            about="g3m/openimages_v7/openimages_v7_valid (nxtp eval)",
            samples=Samples("wds", "{g3m}/openimages_v7/openimages_v7_valid"),
        )
    ]
)

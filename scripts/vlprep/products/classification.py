"""COSMOS's ten classification sets under cosmos/classification/ (its `dataset_root`), each the
folder torchvision's own class opens with download=False.

One product per set, so a missing manual file (StanfordCars) leaves out only that set. Each
layout folder is one store folder shown as it is (rule classification_link): an unpacked
catalog entry, a folder inside one, or a folder merged from several downloads
(vlprep.store.MERGED: Pets, Flowers102, StanfordCars). The folder names are torchvision
0.29.1's joins, restated independently in vlprep.consumers.
"""

from dataclasses import dataclass

from vlprep.products.base import Family, Product, Samples


@dataclass(frozen=True)
class Folder:
    """A folder of cosmos/classification/: the product that builds it, the store folder it
    shows (`store`: a catalog entry or a vlprep.store.MERGED group under extracted/, `inner`:
    the folder inside it, "" for all of it) and the catalog entries behind it."""

    product: str
    store: str
    inner: str
    entries: tuple[str, ...]
    about: str


# cosmos/classification/<folder> -> where it comes from.
FOLDERS: dict[str, Folder] = {
    "cifar-10-batches-py": Folder(
        "cosmos_cifar10", "cifar10", "cifar-10-batches-py", ("cifar10",), "CIFAR-10"
    ),
    "cifar-100-python": Folder(
        "cosmos_cifar100", "cifar100", "cifar-100-python", ("cifar100",), "CIFAR-100"
    ),
    "food-101": Folder("cosmos_food101", "food101", "food-101", ("food101",), "Food-101"),
    "SUN397": Folder(
        "cosmos_sun397",
        "sun397",
        "SUN397",
        ("sun397",),
        "SUN397 (37 GB; the one set COSMOS evaluates as shipped)",
    ),
    "stanford_cars": Folder(
        "cosmos_stanford_cars",
        "stanford_cars",
        "",
        ("stanford_cars_devkit", "stanford_cars_test", "stanford_cars_test_annos"),
        "StanfordCars test split, from files you download by hand (manual_dir)",
    ),
    "fgvc-aircraft-2013b": Folder(
        "cosmos_fgvc_aircraft",
        "fgvc_aircraft",
        "fgvc-aircraft-2013b",
        ("fgvc_aircraft",),
        "FGVC-Aircraft",
    ),
    # torchvision's DTD opens <root>/dtd/dtd/ (dtd.py:57-58): the tar's own dtd/ goes inside
    "dtd": Folder("cosmos_dtd", "dtd", "", ("dtd",), "DTD (its double dtd/dtd)"),
    "oxford-iiit-pet": Folder(
        "cosmos_oxford_pets",
        "oxford_iiit_pet",
        "",
        ("oxford_pets_images", "oxford_pets_annotations"),
        "Oxford-IIIT Pet (two archives, one folder)",
    ),
    # torchvision's Caltech101 opens <root>/caltech101/101_ObjectCategories (caltech.py:49, 61)
    "caltech101": Folder(
        "cosmos_caltech101",
        "caltech101",
        "caltech-101",
        ("caltech101",),
        "Caltech101 (nested archives, BACKGROUND_Google kept)",
    ),
    "flowers-102": Folder(
        "cosmos_flowers102",
        "flowers102",
        "",
        ("flowers102_images", "flowers102_labels", "flowers102_setid"),
        "Flowers102 (tgz + two .mat)",
    ),
}

# Where each set's sample grid comes from, as torchvision's class reads the set.
_ROOT = "{cosmos}/classification"
SAMPLES: dict[str, Samples] = {
    # CIFAR10/CIFAR100: pickled batches, names in batches.meta / meta
    "cifar-10-batches-py": Samples("cifar", f"{_ROOT}/cifar-10-batches-py/test_batch"),
    "cifar-100-python": Samples("cifar", f"{_ROOT}/cifar-100-python/test"),
    # Food101, DTD, Caltech101: a folder per class
    "food-101": Samples("folder", f"{_ROOT}/food-101/images"),
    "dtd": Samples("folder", f"{_ROOT}/dtd/dtd/images"),
    "caltech101": Samples("folder", f"{_ROOT}/caltech101/101_ObjectCategories"),
    # SUN397: sun_*.jpg under SUN397/<letter>/<class>[/<sub>]/, the class its folder
    "SUN397": Samples("folder", f"{_ROOT}/SUN397"),
    # StanfordCars, Flowers102: labels only in .mat files; the images by name
    "stanford_cars": Samples("folder", f"{_ROOT}/stanford_cars/cars_test"),
    "flowers-102": Samples("folder", f"{_ROOT}/flowers-102/jpg"),
    # FGVCAircraft: data/images_variant_test.txt, `<id> <variant>`
    "fgvc-aircraft-2013b": Samples(
        "lines",
        f"{_ROOT}/fgvc-aircraft-2013b/data/images_variant_test.txt",
        images=f"{_ROOT}/fgvc-aircraft-2013b/data/images",
        suffix=".jpg",
    ),
    # OxfordIIITPet: annotations/test.txt ids, images/<id>.jpg, trimaps/<id>.png
    "oxford-iiit-pet": Samples(
        "segmap",
        f"{_ROOT}/oxford-iiit-pet/images",
        images=f"{_ROOT}/oxford-iiit-pet/images",
        suffix=".jpg",
        maps=f"{_ROOT}/oxford-iiit-pet/annotations/trimaps",
        map_suffix=".png",
        split=f"{_ROOT}/oxford-iiit-pet/annotations/test.txt",
    ),
}

FAMILY = Family(
    products=[
        Product(
            folder.product,
            bundles=("cosmos",),
            files=(f"{{cosmos}}/classification/{name}",),
            entries=folder.entries,
            checks=("cosmos",),
            in_all=False,
            demo=True,
            about=f"cosmos/classification/{name}: {folder.about} (COSMOS classification eval)",
            samples=SAMPLES[name],
        )
        for name, folder in FOLDERS.items()
    ],
)

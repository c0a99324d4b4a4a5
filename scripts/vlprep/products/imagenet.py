"""ImageNet-1k val for COSMOS's zero-shot classification (--imagenet-val): wnid folders.

COSMOS opens `--imagenet-val` with torchvision's ImageFolder (src/training/data.py:156), so the
tree is `cosmos/imagenet/data/val_images/<wnid>/<file>.JPEG`, 1,000 folders x 50, the path the
COSMOS datasets README names. The images come one of two ways, chosen per run by the config's
`imagenet_source` (ROUTED below):

- `hub`: the gated hub repo ILSVRC/imagenet-1k, only data/val_images.tar.gz (the wnid is in
  each file's name); needs HF_TOKEN with the repo's terms accepted;
- `manual`: the official ILSVRC2012_img_val.tar and ILSVRC2012_devkit_t12.tar.gz the user put
  in manual_dir (the wnid of each image from the devkit's ground truth and meta.mat).

`entries` is the `hub` route's, what `auto` chooses when manual_dir holds nothing: the route a
run takes is rules/common.smk's `product_route`, and what a run downloads `product_entries`.
"""

from vlprep.products.base import Family, Product, Samples

# Route name -> the catalog entries that route downloads, in the order `auto` tries them: a
# route of manual entries only is taken when all its files are in manual_dir.
ROUTES: dict[str, tuple[str, ...]] = {
    "manual": ("imagenet_val_tar", "imagenet_devkit"),
    "hub": ("imagenet_val_hub",),
}
# What the tree is built from, per route: the unpacked archive of the images (extracted/<it>)
# and, for the manual route, the devkit (its download) that labels them.
IMAGES = {"hub": "imagenet_val_hub", "manual": "imagenet_val_tar"}
DEVKIT = {"manual": ("imagenet_devkit",)}
# Products with routes: product -> (the config key choosing the route, its routes).
ROUTED = {"cosmos_imagenet": ("imagenet_source", ROUTES)}

FAMILY = Family(
    products=[
        Product(
            "cosmos_imagenet",
            bundles=("cosmos",),
            files=("{cosmos}/imagenet/data/val_images",),
            entries=ROUTES["hub"],
            checks=("cosmos",),
            in_all=False,
            demo=True,
            about=(
                "cosmos/imagenet/data/val_images/<wnid>/ (COSMOS --imagenet-val; gated hub "
                "repo with HF_TOKEN, or the official tars in manual_dir: imagenet_source)"
            ),
            samples=Samples("folder", "{cosmos}/imagenet/data/val_images"),
        )
    ],
)

"""Visual Genome for VPGTrans's pre-training: both image zips flat in lavis/vg/images, and the
LAVIS caption and QA files."""

from vlprep.annotations import ImageRefs
from vlprep.products.base import Family, Product, Samples

LAVIS_ANNOTATIONS = {
    "vg/annotations/vg_caption.json": "lavis_vg_caption",
    "vg/annotations/vg_qa.json": "lavis_vg_qa",
}
# VPGTrans opens vg/images/<basename>: both zips' folders, merged flat (rule vg_flatten).
TOP_DIRS = {"vg_images_part1": "VG_100K", "vg_images_part2": "VG_100K_2"}
# ImageTextPairDataset opens os.path.join(vis_root, os.path.basename(ann["image"]))
VG_CAPTION = ImageRefs("vg/images", "image", "basename", {"": "vg_images"})

FAMILY = Family(
    products=[
        Product(
            "vg",
            bundles=("lavis",),
            files=(
                "{lavis}/vg/images",
                *(f"{{lavis}}/{path}" for path in LAVIS_ANNOTATIONS),
                "{reports}/vg_images.json",
            ),
            entries=(*TOP_DIRS, *LAVIS_ANNOTATIONS.values()),
            checks=("lavis",),
            about="lavis/vg/{images (flat),annotations} (Visual Genome captions and QA)",
            samples=Samples.of_refs("{lavis}/vg/annotations/vg_caption.json", "lavis", VG_CAPTION),
        )
    ],
    annotation_sources={path: ("download", entry) for path, entry in LAVIS_ANNOTATIONS.items()},
    annotation_images={
        "vg/annotations/vg_caption.json": VG_CAPTION,
        # VGVQADataset joins ann["image"] unchanged, and LAVIS's paths are absolute Salesforce
        # paths (/export/share/...): written as base names, relative to the flat vg/images
        "vg/annotations/vg_qa.json": ImageRefs(
            "vg/images", "image", "path", {"": "vg_images"}, rewrite="basename"
        ),
    },
    image_checks={"vg_images": ("extracted", "vg_images", "")},
    linked_dirs={"vg/images": ("extracted", "vg_images", "")},
)

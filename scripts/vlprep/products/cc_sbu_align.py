"""MiniGPT-4's stage-2 alignment set, as VPGTrans reads it (lavis/cc_sbu_align) and as
MiniGPT-4 itself reads it (minigpt4/cc_sbu_align): one stored Drive download behind both."""

from vlprep.annotations import ImageRefs
from vlprep.products.base import Family, Product, Samples

# CCSBUAlignDataset: os.path.join(vis_root, "{}.jpg".format(ann["image_id"]))
ALIGN = {"field": "image_id", "join": "id_jpg"}

FAMILY = Family(
    products=[
        Product(
            "cc_sbu_align",
            bundles=("lavis",),
            files=("{lavis}/cc_sbu_align/filter_cap.json", "{lavis}/cc_sbu_align/image"),
            entries=("cc_sbu_align",),
            checks=("lavis",),
            about="lavis/cc_sbu_align (MiniGPT-4's stage-2 set, as VPGTrans reads it)",
            samples=Samples(
                "annotations",
                "{lavis}/cc_sbu_align/filter_cap.json",
                images="{lavis}/cc_sbu_align/image",
                **ALIGN,
            ),
        ),
        Product(
            "minigpt4_cc_sbu_align",
            bundles=("minigpt4",),
            # MiniGPT-4's CCSBUAlignDataset reads {"annotations": [...]} as stored and opens
            # os.path.join(vis_root, "{}.jpg".format(ann["image_id"])): links to the store
            files=("{minigpt4}/cc_sbu_align/filter_cap.json", "{minigpt4}/cc_sbu_align/image"),
            entries=("cc_sbu_align",),
            checks=("minigpt4",),
            about="minigpt4/cc_sbu_align (MiniGPT-4's stage-2 set, as MiniGPT-4 reads it)",
            samples=Samples(
                "annotations",
                "{minigpt4}/cc_sbu_align/filter_cap.json",
                images="{minigpt4}/cc_sbu_align/image",
                records="annotations.item",
                **ALIGN,
            ),
        ),
    ],
    annotation_sources={
        "cc_sbu_align/filter_cap.json": (
            "extracted",
            "cc_sbu_align",
            "cc_sbu_align/filter_cap.json",
        )
    },
    annotation_images={
        # CCSBUAlignDataset opens os.path.join(vis_root, "{}.jpg".format(ann["image_id"])), and
        # VPGTrans's BaseDataset extends a list with the file: MiniGPT-4's {"annotations": [...]}
        # is written as that list
        "cc_sbu_align/filter_cap.json": ImageRefs(
            "cc_sbu_align/image",
            "image_id",
            "id_jpg",
            {"": "cc_sbu_align"},
            records="annotations.item",
        )  # fmt: skip
    },
    image_checks={"cc_sbu_align": ("extracted", "cc_sbu_align", "cc_sbu_align/image")},
    linked_dirs={"cc_sbu_align/image": ("extracted", "cc_sbu_align", "cc_sbu_align/image")},
)

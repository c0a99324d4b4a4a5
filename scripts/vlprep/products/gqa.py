"""GQA for VPGTrans's evaluation: images and the balanced question files (lavis/gqa)."""

from vlprep.annotations import ImageRefs
from vlprep.products.base import Family, Product, Samples

# gqa/defaults.yaml points at Salesforce-internal paths; balanced_val.yaml and
# balanced_testdev.yaml name these (research/datasets.md D03).
LAVIS_ANNOTATIONS = {
    "gqa/annotations/train_balanced_questions.json": "lavis_gqa_train",
    "gqa/annotations/val_balanced_questions.json": "lavis_gqa_val",
    "gqa/annotations/testdev_balanced_questions.json": "lavis_gqa_testdev",
    "gqa/annotations/test_balanced_questions.json": "lavis_gqa_test",
}


def _gqa(**extra) -> ImageRefs:
    # GQADataset / GQAEvalDataset: os.path.join(vis_root, ann["image"]), vis_root gqa/images
    return ImageRefs("gqa/images", "image", "path", {"": "gqa_images"}, **extra)


FAMILY = Family(
    products=[
        Product(
            "gqa",
            bundles=("lavis",),
            files=("{lavis}/gqa/images", *(f"{{lavis}}/{path}" for path in LAVIS_ANNOTATIONS)),
            entries=("gqa_images", *LAVIS_ANNOTATIONS.values()),
            checks=("lavis",),
            about="lavis/gqa/{images,annotations} (GQA eval)",
            samples=Samples.of_refs(
                "{lavis}/gqa/annotations/val_balanced_questions.json",
                "lavis",
                _gqa(),
                text=("question", "answer"),
            ),
        )
    ],
    annotation_sources={path: ("download", entry) for path, entry in LAVIS_ANNOTATIONS.items()},
    annotation_images={
        "gqa/annotations/train_balanced_questions.json": _gqa(),
        "gqa/annotations/val_balanced_questions.json": _gqa(eval_set=True),
        "gqa/annotations/testdev_balanced_questions.json": _gqa(eval_set=True),
        "gqa/annotations/test_balanced_questions.json": _gqa(eval_set=True),
    },
    image_checks={"gqa_images": ("extracted", "gqa_images", "images")},
    linked_dirs={"gqa/images": ("extracted", "gqa_images", "images")},
)

"""VPGTrans's cache_root (`lavis/`) as the workflow builds it: each annotation file's source,
the image folder its dataset class opens, and the image checks that decide which records stay.

Paths are relative to the layout root. The consumer side is restated independently, from
VPGTrans's code, in vlprep.consumers; this table is what the rules build from.

Sources: ("download", catalog entry) is a verified download; ("extracted", entry, path) a file
inside an unpacked archive. Image checks: ("extracted", entry, folder) is a folder inside an
unpacked archive (or vg_flatten's flat folder); ("layout", path) a folder the workflow placed.
"""

from vlprep.annotations import ImageRefs

# The LAVIS annotation files at the `storage` paths of VPGTrans's dataset configs (renames
# included), so training never downloads them (LAVIS would, unverified, on first use).
LAVIS_ANNOTATIONS = {
    "coco/annotations/coco_karpathy_train.json": "lavis_coco_karpathy_train",
    "coco/annotations/coco_karpathy_val.json": "lavis_coco_karpathy_val",
    "coco/annotations/coco_karpathy_test.json": "lavis_coco_karpathy_test",
    "coco/annotations/vqa_train.json": "lavis_vqav2_train",
    "coco/annotations/vqa_val.json": "lavis_vqav2_val",
    "coco/annotations/vqa_val_eval.json": "lavis_vqav2_val_eval",
    "coco/annotations/answer_list.json": "lavis_vqav2_answer_list",
    "coco/annotations/v2_OpenEnded_mscoco_val2014_questions.json": "lavis_vqav2_val_questions",
    "coco/annotations/v2_mscoco_val2014_annotations.json": "lavis_vqav2_val_annotations",
    "coco/annotations/vqa_test.json": "lavis_vqav2_test",
    "okvqa/annotations/okvqa_train.json": "lavis_okvqa_train",
    "okvqa/annotations/vqa_val_eval.json": "lavis_okvqa_val_eval",
    "okvqa/annotations/answer_list.json": "lavis_okvqa_answer_list",
    "okvqa/annotations/OpenEnded_mscoco_val2014_questions.json": "lavis_okvqa_val_questions",
    "okvqa/annotations/mscoco_val2014_annotations.json": "lavis_okvqa_val_annotations",
    "nocaps/annotations/nocaps_val.json": "lavis_nocaps_val",
    "nocaps/annotations/nocaps_test.json": "lavis_nocaps_test",
    "gqa/annotations/train_balanced_questions.json": "lavis_gqa_train",
    "gqa/annotations/val_balanced_questions.json": "lavis_gqa_val",
    "gqa/annotations/testdev_balanced_questions.json": "lavis_gqa_testdev",
    "gqa/annotations/test_balanced_questions.json": "lavis_gqa_test",
    "vg/annotations/vg_caption.json": "lavis_vg_caption",
    "vg/annotations/vg_qa.json": "lavis_vg_qa",
}
# COCO 2014 image folders in coco/images/ (each zip carries its own top folder).
LAVIS_COCO_IMAGES = {
    "train2014": "coco2014_train",
    "val2014": "coco2014_val",
    "test2014": "coco2014_test",
    "test2015": "coco2015_test",
}

# Every annotation file the layout holds and where its bytes come from.
ANNOTATION_SOURCES = {
    **{path: ("download", entry) for path, entry in LAVIS_ANNOTATIONS.items()},
    "sbu_captions/annotations/sbu.json": ("download", "sbu_json"),
    "cc_sbu_align/filter_cap.json": ("extracted", "cc_sbu_align", "cc_sbu_align/filter_cap.json"),
}

# Folders whose every image is decoded once (vlprep.images), by check name.
IMAGE_CHECKS = {
    **{entry: ("extracted", entry, split) for split, entry in LAVIS_COCO_IMAGES.items()},
    "gqa_images": ("extracted", "gqa_images", "images"),
    "vg_images": ("extracted", "vg_images", ""),
    "cc_sbu_align": ("extracted", "cc_sbu_align", "cc_sbu_align/image"),
    "sbu": ("layout", "sbu_captions/images"),
    "nocaps_val": ("layout", "nocaps/images/val"),
    "nocaps_test": ("layout", "nocaps/images/test"),
}


def _coco(*splits: str, **extra) -> ImageRefs:
    # COCOCapDataset / COCOVQADataset and their eval classes: os.path.join(vis_root,
    # ann["image"]), vis_root coco/images (coco/defaults_cap.yaml, defaults_vqa.yaml,
    # okvqa/defaults.yaml `images.storage`)
    folders = {split: LAVIS_COCO_IMAGES[split] for split in splits}
    return ImageRefs("coco/images", "image", "path", folders, **extra)


def _gqa(**extra) -> ImageRefs:
    # GQADataset / GQAEvalDataset: os.path.join(vis_root, ann["image"]), vis_root gqa/images
    return ImageRefs("gqa/images", "image", "path", {"": "gqa_images"}, **extra)


# Annotation files whose records name images, and how their dataset class opens them. Only
# the records whose image opens are written; the rest are counted in reports/lavis/.
ANNOTATION_IMAGES = {
    "coco/annotations/coco_karpathy_train.json": _coco("train2014", "val2014"),
    "coco/annotations/coco_karpathy_val.json": _coco("val2014", eval_set=True),
    "coco/annotations/coco_karpathy_test.json": _coco("val2014", eval_set=True),
    "coco/annotations/vqa_train.json": _coco("train2014"),
    "coco/annotations/vqa_val.json": _coco("val2014"),
    "coco/annotations/vqa_val_eval.json": _coco("val2014", id_field="question_id", eval_set=True),
    "coco/annotations/vqa_test.json": _coco("test2015", eval_set=True),
    "okvqa/annotations/okvqa_train.json": _coco("train2014"),
    "okvqa/annotations/vqa_val_eval.json": _coco("val2014", id_field="question_id", eval_set=True),
    # NoCapsEvalDataset: os.path.join(vis_root, ann["image"]), image = "<split>/<file>"
    "nocaps/annotations/nocaps_val.json": ImageRefs(
        "nocaps/images", "image", "path", {"val": "nocaps_val"}, eval_set=True
    ),
    "nocaps/annotations/nocaps_test.json": ImageRefs(
        "nocaps/images", "image", "path", {"test": "nocaps_test"}, eval_set=True
    ),
    "gqa/annotations/train_balanced_questions.json": _gqa(),
    "gqa/annotations/val_balanced_questions.json": _gqa(eval_set=True),
    "gqa/annotations/testdev_balanced_questions.json": _gqa(eval_set=True),
    "gqa/annotations/test_balanced_questions.json": _gqa(eval_set=True),
    # ImageTextPairDataset opens os.path.join(vis_root, os.path.basename(ann["image"]))
    "vg/annotations/vg_caption.json": ImageRefs(
        "vg/images", "image", "basename", {"": "vg_images"}
    ),
    # VGVQADataset joins ann["image"] unchanged, and LAVIS's paths are absolute Salesforce
    # paths (/export/share/...): written as base names, relative to the flat vg/images
    "vg/annotations/vg_qa.json": ImageRefs(
        "vg/images", "image", "path", {"": "vg_images"}, rewrite="basename"
    ),
    "sbu_captions/annotations/sbu.json": ImageRefs(
        "sbu_captions/images", "image", "basename", {"": "sbu"}
    ),
    # CCSBUAlignDataset opens os.path.join(vis_root, "{}.jpg".format(ann["image_id"])), and
    # VPGTrans's BaseDataset extends a list with the file: MiniGPT-4's {"annotations": [...]}
    # is written as that list
    "cc_sbu_align/filter_cap.json": ImageRefs(
        "cc_sbu_align/image", "image_id", "id_jpg", {"": "cc_sbu_align"}, records="annotations.item"
    ),
}

# Files that must drop what another file dropped: VQA's evaluation asserts that the
# predictions cover exactly the questions of the official files (lavis/common/vqa_tools/vqa.py
# loadRes), so a question whose image is gone leaves all three.
COMPANIONS = {
    "coco/annotations/v2_OpenEnded_mscoco_val2014_questions.json": (
        "coco/annotations/vqa_val_eval.json",
        "questions",
        "question_id",
    ),
    "coco/annotations/v2_mscoco_val2014_annotations.json": (
        "coco/annotations/vqa_val_eval.json",
        "annotations",
        "question_id",
    ),
    "okvqa/annotations/OpenEnded_mscoco_val2014_questions.json": (
        "okvqa/annotations/vqa_val_eval.json",
        "questions",
        "question_id",
    ),
    "okvqa/annotations/mscoco_val2014_annotations.json": (
        "okvqa/annotations/vqa_val_eval.json",
        "annotations",
        "question_id",
    ),
}

# The rest are linked from the store as they are.
PLAIN_ANNOTATIONS = sorted(set(ANNOTATION_SOURCES) - set(ANNOTATION_IMAGES) - set(COMPANIONS))

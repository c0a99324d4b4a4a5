"""COCO: 2017 for nxtp's G3M (coco_valid, coco_train) and COSMOS's retrieval (cosmos_coco), and
2014 with the COCO caption, VQAv2 and OK-VQA annotations for VPGTrans (lavis_coco)."""

from vlprep.annotations import ImageRefs
from vlprep.products.base import Family, Product, Samples

# nxtp's <data_root>/coco/<part> and the store entry (and folder inside) that holds it.
COCO_G3M_PARTS = {
    "annotations": ("coco2017_annotations", "annotations"),
    "train2017": ("coco2017_train", "train2017"),
    "val2017": ("coco2017_val", "val2017"),
}
# nxtp's webdataset folders and the COCO split each is built from.
COCO_WDS_SPLITS = {"coco_valid": "val2017", "coco_train": "train2017"}

# COCO 2014 image folders in lavis/coco/images/ (each zip carries its own top folder).
LAVIS_COCO_IMAGES = {
    "train2014": "coco2014_train",
    "val2014": "coco2014_val",
    "test2014": "coco2014_test",
    "test2015": "coco2015_test",
}
# The LAVIS annotation files at the `storage` paths of VPGTrans's coco caption, coco_vqa and
# ok_vqa configs (renames included), so training never downloads them (LAVIS would, unverified).
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
}


def _coco(*splits: str, **extra) -> ImageRefs:
    # COCOCapDataset / COCOVQADataset and their eval classes: os.path.join(vis_root,
    # ann["image"]), vis_root coco/images (coco/defaults_cap.yaml, defaults_vqa.yaml,
    # okvqa/defaults.yaml `images.storage`)
    folders = {split: LAVIS_COCO_IMAGES[split] for split in splits}
    return ImageRefs("coco/images", "image", "path", folders, **extra)


def _companion(of: str, list_key: str) -> tuple[str, str, str]:
    return (of, list_key, "question_id")


FAMILY = Family(
    products=[
        Product(
            "coco_valid",
            bundles=("g3m",),
            files=("{g3m}/coco/annotations", "{g3m}/coco/val2017", "{g3m}/coco/coco_valid"),
            entries=("coco2017_val", "coco2017_annotations"),
            checks=("g3m",),
            in_all=True,
            about="g3m/coco/coco_valid (nxtp eval)",
            samples=Samples("wds", "{g3m}/coco/coco_valid"),
        ),
        Product(
            "coco_train",
            bundles=("g3m",),
            files=("{g3m}/coco/annotations", "{g3m}/coco/train2017", "{g3m}/coco/coco_train"),
            entries=("coco2017_train", "coco2017_annotations"),
            checks=("g3m",),
            in_all=True,
            about="g3m/coco/coco_train (nxtp G3M training)",
            samples=Samples("wds", "{g3m}/coco/coco_train"),
        ),
        Product(
            "cosmos_coco",
            bundles=("cosmos",),
            files=(
                "{cosmos}/coco/images/val2017",
                "{cosmos}/coco/annotations/captions_val2017.json",
            ),
            entries=("coco2017_val", "coco2017_annotations"),
            checks=("cosmos",),
            in_all=True,
            about="cosmos/coco (COSMOS retrieval eval)",
            # read_coco_pairs: each caption's image by the images list's file_name
            samples=Samples(
                "coco",
                "{cosmos}/coco/annotations/captions_val2017.json",
                images="{cosmos}/coco/images/val2017",
            ),
        ),
        Product(
            "lavis_coco",
            bundles=("lavis",),
            files=(
                *(f"{{lavis}}/coco/images/{split}" for split in LAVIS_COCO_IMAGES),
                *(f"{{lavis}}/{path}" for path in LAVIS_ANNOTATIONS),
            ),
            entries=(*LAVIS_COCO_IMAGES.values(), *LAVIS_ANNOTATIONS.values()),
            checks=("lavis",),
            about="lavis/coco (COCO 2014 images, caption/VQAv2 annotations) and lavis/okvqa",
            samples=Samples.of_refs(
                "{lavis}/coco/annotations/vqa_val.json",
                "lavis",
                _coco("val2014"),
                text=("question", "answer"),
            ),
        ),
    ],
    annotation_sources={path: ("download", entry) for path, entry in LAVIS_ANNOTATIONS.items()},
    annotation_images={
        "coco/annotations/coco_karpathy_train.json": _coco("train2014", "val2014"),
        "coco/annotations/coco_karpathy_val.json": _coco("val2014", eval_set=True),
        "coco/annotations/coco_karpathy_test.json": _coco("val2014", eval_set=True),
        "coco/annotations/vqa_train.json": _coco("train2014"),
        "coco/annotations/vqa_val.json": _coco("val2014"),
        "coco/annotations/vqa_val_eval.json": _coco(
            "val2014", id_field="question_id", eval_set=True
        ),
        "coco/annotations/vqa_test.json": _coco("test2015", eval_set=True),
        "okvqa/annotations/okvqa_train.json": _coco("train2014"),
        "okvqa/annotations/vqa_val_eval.json": _coco(
            "val2014", id_field="question_id", eval_set=True
        ),
    },
    # VQA's evaluation asserts that the predictions cover exactly the questions of the official
    # files (lavis/common/vqa_tools/vqa.py loadRes): a question whose image is gone leaves all
    # three.
    companions={
        "coco/annotations/v2_OpenEnded_mscoco_val2014_questions.json": _companion(
            "coco/annotations/vqa_val_eval.json", "questions"
        ),
        "coco/annotations/v2_mscoco_val2014_annotations.json": _companion(
            "coco/annotations/vqa_val_eval.json", "annotations"
        ),
        "okvqa/annotations/OpenEnded_mscoco_val2014_questions.json": _companion(
            "okvqa/annotations/vqa_val_eval.json", "questions"
        ),
        "okvqa/annotations/mscoco_val2014_annotations.json": _companion(
            "okvqa/annotations/vqa_val_eval.json", "annotations"
        ),
    },
    image_checks={entry: ("extracted", entry, split) for split, entry in LAVIS_COCO_IMAGES.items()},
    linked_dirs={
        f"coco/images/{split}": ("extracted", entry, split)
        for split, entry in LAVIS_COCO_IMAGES.items()
    },
)

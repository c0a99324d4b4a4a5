"""Open trees of mmseg's data/ folder with mmseg 1.1.1's own dataset classes, as COSMOS's
segmentation configs build them; print one JSON document.

usage: open_mmseg.py <data/ folder> <config name> ...   (names: keys of CONFIGS)

Each config's dataset is built with the arguments of ExplainableML/cosmos c80348f
src/training/seg_configs/cfg_<name>.py (type, data_root under data/, data_prefix, ann_file,
reduce_zero_label, and LoadAnnotations' own reduce_zero_label in test_pipeline), with the
pipeline's LoadImageFromFile + LoadAnnotations (Resize and PackSegInputs change no path), and
every sample is loaded. COSMOS's four custom classes are restated from its
src/training/custom_datasets.py (only METAINFO's palettes are left out) and registered, as
seg_eval.py's `import custom_datasets` does. Per config: the dataset's length, the label values
the loaded maps hold and the first image's shape; or the exception the class or a transform
raised.
"""

import json
import os.path as osp
import sys

import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets import (
    ADE20KDataset,
    BaseSegDataset,
    CityscapesDataset,
    COCOStuffDataset,
    PascalVOCDataset,
)
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import DATASETS


# ---- COSMOS src/training/custom_datasets.py, restated ----------------------------------------
@DATASETS.register_module()
class PascalVOC20Dataset(BaseSegDataset):
    METAINFO = dict(
        classes=("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
                 "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
                 "sheep", "sofa", "train", "tvmonitor"))  # fmt: skip

    def __init__(self, ann_file, img_suffix=".jpg", seg_map_suffix=".png",
                 reduce_zero_label=True, **kwargs) -> None:  # fmt: skip
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, ann_file=ann_file, **kwargs)  # fmt: skip
        assert fileio.exists(self.data_prefix["img_path"], self.backend_args) and osp.isfile(
            self.ann_file
        )


@DATASETS.register_module()
class COCOObjectDataset(BaseSegDataset):
    METAINFO = dict(classes=tuple(f"class{i}" for i in range(81)))  # background + 80 things

    def __init__(self, **kwargs):
        super().__init__(img_suffix=".jpg", seg_map_suffix="_instanceTrainIds.png", **kwargs)


CONTEXT59 = tuple(f"class{i}" for i in range(59))


@DATASETS.register_module()
class PascalContext60Dataset(BaseSegDataset):
    METAINFO = dict(classes=("background", *CONTEXT59))

    def __init__(self, ann_file: str, img_suffix=".jpg", seg_map_suffix=".png", **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, ann_file=ann_file,
                         reduce_zero_label=False, **kwargs)  # fmt: skip


@DATASETS.register_module()
class PascalContext59Dataset(BaseSegDataset):
    METAINFO = dict(classes=CONTEXT59)

    def __init__(self, ann_file: str, img_suffix=".jpg", seg_map_suffix=".png",
                 reduce_zero_label=True, **kwargs):  # fmt: skip
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, ann_file=ann_file,
                         reduce_zero_label=reduce_zero_label, **kwargs)  # fmt: skip


# ---- the 8 configs: (class, data_root under data/, dataset kwargs, LoadAnnotations kwargs) -----
VOC_PREFIX = dict(img_path="JPEGImages", seg_map_path="SegmentationClass")
CONTEXT_PREFIX = dict(img_path="JPEGImages", seg_map_path="SegmentationClassContext")
COCO_PREFIX = dict(img_path="images/val2017", seg_map_path="annotations/val2017")
CONFIGS = {
    "voc21": (PascalVOCDataset, "VOCdevkit/VOC2012",
              dict(data_prefix=VOC_PREFIX, ann_file="ImageSets/Segmentation/val.txt"), {}),
    "voc20": (PascalVOC20Dataset, "VOCdevkit/VOC2012",
              dict(data_prefix=VOC_PREFIX, ann_file="ImageSets/Segmentation/val.txt"), {}),
    "context59": (PascalContext59Dataset, "VOCdevkit/VOC2010",
                  dict(data_prefix=CONTEXT_PREFIX, ann_file="ImageSets/SegmentationContext/val.txt"),
                  dict(reduce_zero_label=True)),
    "context60": (PascalContext60Dataset, "VOCdevkit/VOC2010",
                  dict(data_prefix=CONTEXT_PREFIX, ann_file="ImageSets/SegmentationContext/val.txt"),
                  {}),
    "coco_stuff164k": (COCOStuffDataset, "coco_stuff164k", dict(data_prefix=COCO_PREFIX), {}),
    "coco_object": (COCOObjectDataset, "coco_stuff164k",
                    dict(data_prefix=COCO_PREFIX, reduce_zero_label=False), {}),
    "city_scapes": (CityscapesDataset, "cityscapes",
                    dict(data_prefix=dict(img_path="leftImg8bit/val", seg_map_path="gtFine/val")),
                    {}),
    "ade20k": (ADE20KDataset, "ade/ADEChallengeData2016",
               dict(data_prefix=dict(img_path="images/validation",
                                     seg_map_path="annotations/validation")),
               dict(reduce_zero_label=True)),
}  # fmt: skip


def open_config(data: str, name: str) -> dict:
    cls, subpath, kwargs, load_kwargs = CONFIGS[name]
    try:
        dataset = cls(data_root=osp.join(data, subpath), test_mode=True, **kwargs)
        load_image, load_map = LoadImageFromFile(), LoadAnnotations(**load_kwargs)
        values: set[int] = set()
        shape = None
        for index in range(len(dataset)):
            results = load_map(load_image(dataset.get_data_info(index)))
            values |= {int(v) for v in np.unique(results["gt_seg_map"])}
            shape = shape or list(results["img"].shape)
            assert results["gt_seg_map"].shape == results["img"].shape[:2], results["seg_map_path"]
        return {
            "class": cls.__name__,
            "len": len(dataset),
            "labels": sorted(values),
            "shape": shape,
            "reduce_zero_label": dataset.reduce_zero_label,
        }
    except Exception as err:  # noqa: BLE001 - reported: the test decides
        return {"class": cls.__name__, "error": f"{type(err).__name__}: {err}"}


def main() -> None:
    data, names = sys.argv[1], sys.argv[2:]
    print(json.dumps({name: open_config(data, name) for name in names}))


if __name__ == "__main__":
    main()

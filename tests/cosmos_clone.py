"""A stand-in COSMOS clone: files shaped like ExplainableML/cosmos's at the lines vlprep edits."""

from pathlib import Path

from vlprep.cosmos_paths import MMSEG_ALIAS

# The eight configs' data_root subpaths (cfg_*.py at ExplainableML/cosmos c80348f, l.10-13).
SUBPATHS = {
    "ade20k": "ade/ADEChallengeData2016",
    "city_scapes": "cityscapes",
    "coco_object": "coco_stuff164k",
    "coco_stuff164k": "coco_stuff164k",
    "context59": "VOCdevkit/VOC2010",
    "context60": "VOCdevkit/VOC2010",
    "voc20": "VOCdevkit/VOC2012",
    "voc21": "VOCdevkit/VOC2012",
}


def fake_checkout(root: Path) -> Path:
    """Files shaped like COSMOS's: the assignment lines among others (not COSMOS's code)."""
    configs = root / "src/training/seg_configs"
    configs.mkdir(parents=True)
    for name, sub in SUBPATHS.items():
        (configs / f"cfg_{name}.py").write_text(
            "_base_ = './base_config.py'\n\n"
            f"model = dict(name_path='./training/seg_configs/cls_{name}.txt')\n\n"
            f"dataset_type = 'X'\ndata_root = '{MMSEG_ALIAS}/{sub}'\n\n"
            "test_dataloader = dict(dataset=dict(data_root=data_root))\n"
        )
    utils = root / "src/dataloaders/utils.py"
    utils.parent.mkdir(parents=True)
    utils.write_text(
        "import os\n# Set your directory to classification dataset.\n"
        'dataset_root = "/your/directory/to/classification/dataset" \n\ndef f():\n    pass\n'
    )
    return root

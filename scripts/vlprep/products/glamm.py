"""GLaMM's --dataset_dir (glamm/): what its fine-tuning and evaluation code opens, with its own
spellings (flikcr_30k, cocostuff), from mbzuai-oryx/groundingLMM e74865f2.

This module: the folders and files built from stores other layouts share (COCO 2017 and 2014,
Flickr30k, flat Visual Genome, ADE20K, raw COCO-Stuff maps) and three small downloads (VG's
test_caption.json, the hand-fetched train.json, LLaVA-Instruct-150K). Every path is a link (by
link_mode) to the store; nothing is converted. research/cosmos-glamm.md §4 lists the code lines.
"""

from vlprep.products.base import Family, Product, Samples

# glamm/<folder> -> (store entry, folder inside its unpacked tree): rule glamm_link.
GLAMM_FOLDERS = {
    # COCO_Caption_ds.py:39 and LLavaInstruct_vqa_ds.py:36 (<dd>/coco_2017/{train,val}2017),
    # the COCO-Stuff images (Semantic_Segm_ds.py:38), and the checkout's coco_2017 link
    "coco_2017/train2017": ("coco2017_train", "train2017"),
    "coco_2017/val2017": ("coco2017_val", "val2017"),
    # COCO_Caption_ds.py:41-42: annotations/captions_{train,val}2017.json
    "coco_2017/annotations": ("coco2017_annotations", "annotations"),
    # four paths to COCO train2014: region-caption eval (eval/region_captioning/infer.py:25) and
    # the checkout's coco_2014 link (GranDf_gcg_ds.py:284), RefCOCO segmentation
    # (RefCOCO_Segm_ds.py:83-84), and the flat folder of RefCOCO regions (RefCOCO_VG_Region_ds.py
    # :42 image_dir "coco_2014", file_name COCO_train2014_<id>.jpg)
    "coco_2014/train2014": ("coco2014_train", "train2014"),
    "Refer_Segm/coco_2014/train2014": ("coco2014_train", "train2014"),
    "RefCoco_Reg/coco_2014": ("coco2014_train", "train2014"),
    # Flickr_Region_ds.py:37 and the checkout's flikcr_30k/train (GranDf_gcg_ds.py:196)
    "flikcr_30k/flickr30k-images": ("flickr30k_images", "flickr30k-images"),
    "flikcr_30k/train": ("flickr30k_images", "flickr30k-images"),
    # RefCOCO_VG_Region_ds.py:254-258: visual_genome/images/<file_name>, the flat VG store
    "visual_genome/images": ("vg_images", ""),
    # Semantic_Segm_ds.py:25: ade20k/images/training, the zip's ADEChallengeData2016 renamed
    "Semantic_Segm/ade20k": ("ade20k", "ADEChallengeData2016"),
    # Semantic_Segm_ds.py:36: the raw 0-181 maps, never mmseg's converted ones (finding 11)
    "Semantic_Segm/cocostuff/train2017": ("cocostuff_maps", "train2017"),
}
# glamm/<file> -> (store entry, path inside its download folder, "" for a one-file download):
# rule glamm_file.
GLAMM_FILES = {
    "visual_genome/test_caption.json": ("glamm_vg_test_caption", ""),
    "visual_genome/train.json": ("glamm_vg_train", ""),
    "llava_dataset/llava_instruct_150k.json": ("glamm_llava_instruct", "llava_instruct_150k.json"),
}
# Store entries behind each store folder that is no catalog entry of its own.
STORE_ENTRIES = {"vg_images": ("vg_images_part1", "vg_images_part2")}


def _product(name: str, paths: tuple[str, ...], about: str, samples: Samples) -> Product:
    stores = [GLAMM_FOLDERS[p][0] if p in GLAMM_FOLDERS else GLAMM_FILES[p][0] for p in paths]
    entries = [e for store in stores for e in STORE_ENTRIES.get(store, (store,))]
    return Product(
        name,
        bundles=("glamm",),
        files=tuple(f"{{glamm}}/{path}" for path in paths),
        entries=tuple(dict.fromkeys(entries)),
        checks=("glamm",),
        in_all=False,
        demo=True,
        about=about,
        samples=samples,
    )


FAMILY = Family(
    products=[
        _product(
            "glamm_coco",
            (
                "coco_2017/train2017",
                "coco_2017/val2017",
                "coco_2017/annotations",
                "coco_2014/train2014",
                "Refer_Segm/coco_2014/train2014",
                "RefCoco_Reg/coco_2014",
            ),
            "glamm/coco_2017, coco_2014 and the COCO 2014 folders of Refer_Segm and RefCoco_Reg",
            # CocoCapVal: captions_val2017.json, each image by the images list's file_name
            Samples(
                "coco",
                "{glamm}/coco_2017/annotations/captions_val2017.json",
                images="{glamm}/coco_2017/val2017",
            ),
        ),
        _product(
            "glamm_flickr",
            ("flikcr_30k/flickr30k-images", "flikcr_30k/train"),
            "glamm/flikcr_30k/{flickr30k-images,train} (Flickr30k images, GLaMM's spelling)",
            Samples("folder", "{glamm}/flikcr_30k/flickr30k-images"),
        ),
        _product(
            "glamm_vg",
            ("visual_genome/images", "visual_genome/test_caption.json", "visual_genome/train.json"),
            "glamm/visual_genome (flat VG images, region captions; train.json by hand)",
            # VisualGenomeRegDataset: region captions and boxes, images by file_name
            Samples(
                "coco",
                "{glamm}/visual_genome/test_caption.json",
                images="{glamm}/visual_genome/images",
            ),
        ),
        _product(
            "glamm_llava",
            ("llava_dataset/llava_instruct_150k.json", "coco_2017/train2017"),
            "glamm/llava_dataset/llava_instruct_150k.json (images: coco_2017/train2017)",
            # LLaVAInstructDataset: each record's image under coco_2017/train2017
            Samples(
                "annotations",
                "{glamm}/llava_dataset/llava_instruct_150k.json",
                images="{glamm}/coco_2017/train2017",
                text=("conversations",),
            ),
        ),
        _product(
            "glamm_ade20k",
            ("Semantic_Segm/ade20k",),
            "glamm/Semantic_Segm/ade20k (the ADE20K zip, shared with COSMOS)",
            # init_ade20k: images/training/*.jpg, each map .png under annotations/training
            Samples(
                "segmap",
                "{glamm}/Semantic_Segm/ade20k/images/training",
                images="{glamm}/Semantic_Segm/ade20k/images/training",
                suffix=".jpg",
                maps="{glamm}/Semantic_Segm/ade20k/annotations/training",
                map_suffix=".png",
            ),
        ),
        _product(
            "glamm_cocostuff",
            ("Semantic_Segm/cocostuff/train2017", "coco_2017/train2017"),
            "glamm/Semantic_Segm/cocostuff/train2017 (raw COCO-Stuff maps; images: coco_2017)",
            # init_cocostuff: the maps listed, each image the same name .jpg in coco_2017
            Samples(
                "segmap",
                "{glamm}/Semantic_Segm/cocostuff/train2017",
                images="{glamm}/coco_2017/train2017",
                suffix=".jpg",
                maps="{glamm}/Semantic_Segm/cocostuff/train2017",
                map_suffix=".png",
            ),
        ),
    ]
)

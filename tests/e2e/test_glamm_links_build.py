"""Through Snakemake, against the stand-ins: GLaMM's linked folders and small downloads (Drive,
hub, a manual file) built into glamm/, checked as GLaMM's classes open them, stored once; the
end of the run prints the `ln -s` commands, and glamm.checkout makes those links instead."""

import os
import shutil

from conftest import make_config, run_snakemake

from standin.drive import DriveStandin
from vlprep.consumers import check_glamm, check_glamm_working_dir
from vlprep.products.glamm import FAMILY

MINE = [p.name for p in FAMILY.products]


def test_glamm_links_through_the_workflow(tmp_path, world, standin, hub_standin):
    data = tmp_path / "data"
    # the one file GLaMM users get by hand (GRiT's host is gone), as a user would
    manual = data / "manual"
    manual.mkdir(parents=True)
    shutil.copyfile(world.parent / "manual" / "train.json", manual / "train.json")
    checkout = tmp_path / "groundingLMM"
    (checkout / "dataset" / "utils").mkdir(parents=True)
    (checkout / "train.py").write_text("# GLaMM\n")

    with DriveStandin(world.parent / "drive") as drive:
        config = make_config(
            tmp_path, world, standin, hub_standin, drive=(drive.proxy, str(drive.ca_file))
        )
        result = run_snakemake(config, *MINE)
        assert result.returncode == 0, result.stderr[-4000:]
        # test_caption.json came through the Drive stand-in, by its drive id
        assert "1zF3UGHU1rvgTujinqJ-hZtrCBVsfsuel" in drive.stats()["files"]

    glamm = data / "glamm"
    assert check_glamm(glamm, MINE) == []
    # stored once: the layout's folders are links into the shared stores
    stores = {
        "coco_2017/train2017": "extracted/coco2017_train/train2017",
        "coco_2014/train2014": "extracted/coco2014_train/train2014",
        "RefCoco_Reg/coco_2014": "extracted/coco2014_train/train2014",
        "Refer_Segm/coco_2014/train2014": "extracted/coco2014_train/train2014",
        "flikcr_30k/train": "extracted/flickr30k_images/flickr30k-images",
        "visual_genome/images": "extracted/vg_images",
        "Semantic_Segm/ade20k": "extracted/ade20k/ADEChallengeData2016",
        "Semantic_Segm/cocostuff/train2017": "extracted/cocostuff_maps/train2017",
    }
    for rel, store in stores.items():
        assert (glamm / rel).is_symlink(), rel
        assert os.path.realpath(glamm / rel) == os.path.realpath(data / store), rel
    llava = glamm / "llava_dataset" / "llava_instruct_150k.json"
    assert os.path.samefile(
        os.path.realpath(llava),
        data / "downloads" / "glamm_llava_instruct" / "llava_instruct_150k.json",
    )
    # no checkout configured: the end of the run says how to link GLaMM's working directory
    for name in ("coco_2017", "coco_2014", "flikcr_30k"):
        assert f"ln -s {glamm / name} {name}" in result.stderr
    assert check_glamm_working_dir(checkout)  # not linked yet

    # glamm.checkout: the bundle's working-directory rule links the checkout (nothing rebuilt)
    config = make_config(tmp_path, world, standin, hub_standin, glamm={"checkout": str(checkout)})
    dry = run_snakemake(config, "glamm", "-n")
    assert dry.returncode == 0, dry.stderr[-4000:]
    assert "glamm_working_dir" in dry.stdout
    linked = run_snakemake(config, "glamm_working_dir")
    assert linked.returncode == 0, linked.stderr[-4000:]
    assert os.readlink(checkout / "coco_2017") == str(glamm / "coco_2017")
    assert check_glamm_working_dir(checkout) == []
    assert "ln -s" not in linked.stderr

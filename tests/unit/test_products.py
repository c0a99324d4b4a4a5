"""Bundles and targets by name: what a run's targets build, and what a mistyped one suggests."""

from standin.demo import DEMO_PRODUCTS
from vlprep.products import BUNDLES, products_of, unknown_target_message


def test_targets_expand_to_the_products_they_build():
    every = list(DEMO_PRODUCTS)
    assert products_of(["sbu"], every, enabled=every) == ["sbu"]
    cosmos = products_of(["cosmos"], every, enabled=every)
    assert cosmos[:2] == ["cosmos_coco", "flickr30k"] and cosmos == BUNDLES["cosmos"]
    assert products_of(["all"], every, enabled=["coco_valid", "cosmos_coco"]) == [
        "coco_valid",
        "cosmos_coco",
    ]
    # sbu is in both bundles: checked once.
    both = products_of(["g3m", "lavis", "sbu"], every, enabled=every)
    assert both == list(dict.fromkeys(BUNDLES["g3m"] + BUNDLES["lavis"]))
    assert products_of(["preflight", "laion115m_retry_failed"], every, enabled=every) == []
    assert products_of(["sbu_images", "cc_sbu_align"], every, enabled=every) == ["cc_sbu_align"]


def test_unknown_target_suggests_the_closest_targets():
    targets = ["all", "coco_valid", "coco_train", "cosmos", "lavis", "preflight", "sbu"]
    message = unknown_target_message("coco_vlaid", targets)
    assert message.startswith("coco_vlaid: no such target")
    assert "Did you mean coco_valid or coco_train?" in message
    assert "Did you mean" not in unknown_target_message("xyzzy", targets)


def test_an_opt_in_product_is_left_out_of_its_bundle():
    from vlprep.products import PRODUCTS

    assert PRODUCTS["glamm_grand"].opt_in and "glamm" in PRODUCTS["glamm_grand"].bundles
    assert "glamm_grand" not in BUNDLES["glamm"]
    assert products_of(["glamm_grand"], list(PRODUCTS), enabled=[]) == ["glamm_grand"]


def test_the_grand_check_wants_the_hub_archives(tmp_path):
    from vlprep.consumers import check_glamm

    assert "missing (glamm_grand)" in check_glamm(tmp_path, ["glamm_grand"])[0]
    part = tmp_path / "GranD_Data" / "annotations" / "part_1"
    part.mkdir(parents=True)
    assert "no part_N/part_N_M.tar.gz" in check_glamm(tmp_path, ["glamm_grand"])[0]
    (part / "part_1_1.tar.gz").write_bytes(b"<html>quota exceeded</html>")
    assert "not a gzip file" in check_glamm(tmp_path, ["glamm_grand"])[0]
    (part / "part_1_1.tar.gz").write_bytes(b"\x1f\x8b\x08rest")
    assert check_glamm(tmp_path, ["glamm_grand"]) == []

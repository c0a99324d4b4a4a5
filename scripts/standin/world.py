"""Assemble the stand-in world: generated copies of every catalog file, a catalog for them,
and a config that points the real clients at a local host.

The files sit under `<world>/www/<host>/<path>` so one stand-in host can serve every real
host, and the workflow reaches them only through `mirrors:`: nothing in it knows the host is
not the real one. The generated catalog keeps every real entry but swaps in the generated
files' sizes and checksums.
"""

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from standin.classification import IMAGES as CLASSIFICATION_IMAGES
from standin.classification import make_classification
from standin.coco import make_coco2014, make_coco2017
from standin.flickr30k import FLICKR30K_REPO, make_flickr30k_jsons, make_flickr30k_repo
from standin.glamm import GRAND_REPO, LLAVA_REPO, make_glamm, make_grand_repo, make_llava_repo
from standin.glamm_refer import GRANDF_REPO, make_glamm_refer, make_grandf_repo
from standin.glamm_semantic import make_glamm_semantic
from standin.hub import HubState, make_cc3m_wds_repo, make_laion_coco_repo
from standin.imagenet import IMAGENET_REPO, make_imagenet, make_imagenet_repo
from standin.imagenet import SHAPE as IMAGENET_SHAPE
from standin.laion import make_blip_json
from standin.lavis import make_cc_sbu_align_zip, make_gqa_zip, make_lavis_annotations
from standin.named import make_nocaps_jsons, make_sbu_json
from standin.openimages import make_openimages
from standin.segmentation import make_segmentation
from standin.vg import make_vg_zips
from vlprep.catalog import load_catalog
from vlprep.errors import VlprepError

REPO = Path(__file__).resolve().parents[2]
REAL_CATALOG = REPO / "config" / "catalog.yaml"
# Bump when a generator's output changes, so cached worlds are rebuilt.
WORLD_VERSION = 9
# Image URLs inside the generated URL lists name this host. Nothing resolves it: clients reach
# it through the image stand-in acting as their HTTP proxy (http_proxy), the way a real run
# reaches the web, so the URL lists look like real ones and no workflow code knows the host.
IMAGE_HOST = "http://images.standin.invalid"
# Where a run is sent for a service whose stand-in is not running: refused at once, locally.
NOWHERE = "http://127.0.0.1:9"
LAION_ROWS = 600
CC_SBU_ROWS = 300
SBU_ROWS = 300
NOCAPS_ROWS = {"val": 120, "test": 80}
# More than 2 x 2,999 narratives, so the openimages tars span three folders.
OPENIMAGES_IMAGES = 6100


def _blip_json(out: Path) -> dict[str, Path]:
    """BLIP's two synthetic-caption lists MiniGPT-4 stage 1 reads: LAION-115M and CC+SBU."""
    laion = out / "laion_synthetic_filtered_large.json"
    cc_sbu = out / "ccs_synthetic_filtered_large.json"
    laion.parent.mkdir(parents=True, exist_ok=True)
    make_blip_json(laion, rows=LAION_ROWS, url_host=IMAGE_HOST)
    make_blip_json(cc_sbu, rows=CC_SBU_ROWS, url_host=IMAGE_HOST, seed=1)
    return {laion.name: laion, cc_sbu.name: cc_sbu}


def _sbu_json(out: Path) -> dict[str, Path]:
    path = make_sbu_json(out / "sbu.json", SBU_ROWS, IMAGE_HOST, duplicate_every=50)
    return {path.name: path}


def _nocaps(out: Path) -> dict[str, Path]:
    return make_nocaps_jsons(out / "nocaps", NOCAPS_ROWS["val"], NOCAPS_ROWS["test"], IMAGE_HOST)


def _lavis(out: Path) -> dict[str, Path]:
    """GQA, Visual Genome and cc_sbu_align archives, and the LAVIS annotation files, which name
    images of these and of the COCO 2014 zips (made before, in `out`)."""
    gqa = make_gqa_zip(out / "gqa")
    vg = make_vg_zips(out / "vg", n_images=60)
    coco2014 = {split: out / f"{split}.zip" for split in ("train2014", "val2014", "test2015")}
    annotations = make_lavis_annotations(
        out,
        coco2014=coco2014,
        gqa_zip=gqa,
        vg_zips=[vg.files["images.zip"], vg.files["images2.zip"]],
        nocaps_rows=NOCAPS_ROWS,
    )
    return {
        **annotations,
        # by entry id: GQA's and VG's first zip are both called images.zip
        "gqa_images": gqa,
        "vg_images_part1": vg.files["images.zip"],
        "vg_images_part2": vg.files["images2.zip"],
        "cc_sbu_align": make_cc_sbu_align_zip(out / "cc_sbu_align"),
    }


def _openimages(out: Path) -> dict[str, Path]:
    return make_openimages(out / "openimages", n_images=OPENIMAGES_IMAGES)


def _flickr30k(out: Path) -> dict[str, Path]:
    return make_flickr30k_jsons(out / "flickr30k")


def _generators(n_val: int, n_train: int) -> list[Callable[[Path], dict[str, Path]]]:
    """Each writes files into the scratch folder; keys are catalog file names or entry ids."""
    return [
        lambda out: make_coco2017(out, n_train=n_train, n_val=n_val),
        lambda out: make_coco2014(out),
        _blip_json,
        _sbu_json,
        _nocaps,
        _lavis,
        _openimages,
        _flickr30k,
        lambda out: make_imagenet(out / "imagenet"),
        lambda out: make_classification(out / "classification"),
        lambda out: make_segmentation(out / "segmentation"),
        lambda out: make_glamm(out / "glamm"),
        lambda out: make_glamm_refer(out / "glamm_refer"),
        lambda out: make_glamm_semantic(out / "glamm_semantic"),
    ]


# Hub repositories of the catalog's hf entries, generated under <world>/hub.
HUB_REPOS = {
    "laion/laion-coco": lambda root: make_laion_coco_repo(
        root, n_files=3, rows_per_file=100, url_host=IMAGE_HOST
    ),
    "pixparse/cc3m-wds": lambda root: make_cc3m_wds_repo(root),
    FLICKR30K_REPO: make_flickr30k_repo,
    IMAGENET_REPO: make_imagenet_repo,  # gated: standin.imagenet.STANDIN_TOKEN gets in
    LLAVA_REPO: make_llava_repo,
    GRANDF_REPO: make_grandf_repo,
    GRAND_REPO: make_grand_repo,
}


def _digests(path: Path) -> dict:
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha256.update(chunk)
            md5.update(chunk)
    return {"size": path.stat().st_size, "sha256": sha256.hexdigest(), "md5": md5.hexdigest()}


def served_path(url: str) -> Path:
    """Where a real URL's stand-in copy lives under www/: `<host>/<path>`."""
    parts = urlsplit(url)
    return Path(parts.netloc) / parts.path.lstrip("/")


def served_at(entry: dict) -> Path:
    """Where the world keeps an entry's file, relative to the world: the folder each stand-in
    serves (www/<host>/<path>, s3/<bucket>/<key>, drive/<id>/<name>)."""
    if entry["kind"] == "http":
        return Path("www") / served_path(entry["url"])
    if entry["kind"] == "s3":
        return Path("s3") / entry["url"].removeprefix("s3://")
    if entry["kind"] == "gdrive":
        return Path("drive") / entry["drive_id"] / entry["filename"]
    if entry["kind"] == "manual":  # what the user downloads by hand; the demo puts it in place
        return Path("manual") / entry["filename"]
    raise VlprepError(f"stand-in world: no stand-in serves {entry['kind']} entry {entry['id']}")


def build_world(world: Path, *, n_val: int = 3010, n_train: int = 40) -> Path:
    """Generate (or reuse) the world in `world`; return the path of its catalog."""
    world = Path(world)
    stamp = {"version": WORLD_VERSION, "n_val": n_val, "n_train": n_train}
    stamp_path, catalog_path = world / "world.json", world / "catalog.yaml"
    if stamp_path.is_file() and json.loads(stamp_path.read_text()) == stamp:
        return catalog_path

    shutil.rmtree(world, ignore_errors=True)
    scratch = world / "generated"
    generated: dict[str, Path] = {}
    for generate in _generators(n_val, n_train):
        generated.update(generate(scratch))

    catalog = yaml.safe_load(REAL_CATALOG.read_text())
    hub_root = world / "hub"
    for repo in HUB_REPOS.values():
        repo(hub_root)
    hub = HubState(hub_root)
    for entry_id, entry in load_catalog(REAL_CATALOG).items():
        if entry["kind"] == "hf":
            if entry["repo"] not in HUB_REPOS:
                raise VlprepError(f"stand-in world: no hub repository for entry {entry_id}")
            # Pin the stand-in's commit, as a real catalog pins the reviewed one.
            catalog[entry_id]["revision"] = hub.repo(entry["repo_type"], entry["repo"]).sha
            continue
        name = entry["filename"]
        source = generated.get(entry_id) or generated.get(name)
        if source is None:
            raise VlprepError(f"stand-in world: no generator makes {name} for entry {entry_id}")
        target = world / served_at(entry)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        catalog[entry_id].update(_digests(target))
    shutil.rmtree(scratch)
    catalog["laion115m_json"]["rows"] = LAION_ROWS
    catalog["cc_sbu_json"]["rows"] = CC_SBU_ROWS
    catalog["laion_coco_meta"]["rows"] = 300
    catalog["sbu_json"]["rows"] = SBU_ROWS
    catalog["nocaps_val_info"]["rows"] = NOCAPS_ROWS["val"]
    catalog["nocaps_test_info"]["rows"] = NOCAPS_ROWS["test"]
    # Counts a consumer needs exactly (COSMOS's random_split): the stand-ins' own, as `rows`.
    for entry_id, count in CLASSIFICATION_IMAGES.items():
        catalog[entry_id]["images"] = count

    for entry_id in ("imagenet_val_hub", "imagenet_val_tar"):  # 10 wnids x 3, not 1,000 x 50
        catalog[entry_id].update(IMAGENET_SHAPE)

    header = "# Generated by standin.world: the real catalog, with the stand-ins' digests.\n"
    catalog_path.write_text(header + yaml.safe_dump(catalog, sort_keys=False, width=100))
    stamp_path.write_text(json.dumps(stamp))
    return catalog_path


def place_manual_files(world: Path, manual_dir: Path) -> list[Path]:
    """Put the world's manual files (registration-only sources) into `manual_dir`, as a user
    who downloaded them by hand would; return what was placed. Linked, not copied."""
    placed = []
    source = Path(world) / "manual"
    for path in sorted(source.iterdir()) if source.is_dir() else []:
        target = Path(manual_dir) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
        placed.append(target)
    return placed


def mirrors_for(catalog_path: Path, base_url: str) -> dict[str, list[str]]:
    """Mirror rules sending every host in the catalog to the stand-in at `base_url`."""
    mirrors = {}
    for entry in load_catalog(catalog_path).values():
        if entry["kind"] != "http":
            continue
        parts = urlsplit(entry["url"])
        mirrors[f"{parts.scheme}://{parts.netloc}/"] = [f"{base_url.rstrip('/')}/{parts.netloc}/"]
    return mirrors


# The stand-in lists are tiny: shards of 100 rows, parts of 200, so splitting is exercised.
STANDIN_URL_LISTS = {
    name: {
        "rows_per_part": 200,
        "samples_per_shard": 100,
        "max_rows": None,
        "image_size": 64,
        "processes": 1,
        "threads": 16,
        "timeout": 2,
        "success_floor": 0.5,
    }
    for name in ("laion115m", "cc_sbu", "laion_coco", "sbu", "nocaps_val", "nocaps_test")
}


def write_config(
    path: Path,
    *,
    data_root: Path,
    catalog: Path,
    base_url: str,
    hub_url: str | None = None,
    s3_url: str | None = None,
    drive: tuple[str, str] | None = None,
    **overrides,
) -> Path:
    """A config for a run against the stand-ins: only they are ever contacted.

    `drive` is the Drive stand-in's (proxy address, CA file).
    """
    config = {
        "data_root": str(data_root),
        "catalog": str(catalog),
        "mirrors": mirrors_for(catalog, base_url),
        # Never fall back to the real hosts: the stand-in world must stay offline.
        "fetch": {"retries": 3, "timeout": 20, "max_backoff": 5, "try_original": False},
        # A stand-in not given is a dead loopback port, never the real service.
        "hf_endpoint": hub_url or NOWHERE,
        "s3_endpoint": s3_url or NOWHERE,
        "gdrive": {"proxy": drive[0], "ca_bundle": drive[1]} if drive else {"proxy": NOWHERE},
        "url_lists": STANDIN_URL_LISTS,
        **overrides,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def proxied_env(image_host: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a run whose image downloads go through the image stand-in.

    img2dataset (urllib) sends every image request to http_proxy; loopback stand-ins (files,
    hub) are exempt. Our own clients honour the same variables.
    """
    env = dict(os.environ if env is None else env)
    for name in ("http_proxy", "HTTP_PROXY"):
        env[name] = image_host
    for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    env["NO_ALBUMENTATIONS_UPDATE"] = "1"
    env["WANDB_MODE"] = "disabled"
    return env

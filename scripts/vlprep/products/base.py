"""What a product declares: the vocabulary of the registry's family modules.

Paths are templates over the roots the workflow resolves from the config: `{g3m}`, `{lavis}`,
`{minigpt4}`, `{cosmos}`, `{glamm}` (the layouts), `{data_root}`, `{downloads}`, `{extracted}` and
`{reports}` (`<data_root>/reports`).
"""

from dataclasses import dataclass, field
from typing import Any

from vlprep.annotations import ImageRefs

LAYOUTS = ("g3m", "cosmos", "minigpt4", "lavis", "glamm")


@dataclass(frozen=True)
class Samples:
    """Where the report's grid of sample images comes from: the built product, read the way its
    consumer reads it (vlprep.samples draws it, opening a bounded number of files).

    `kind` says how (vlprep.samples.READERS): "wds" the first samples of a folder's first tar,
    with their txt or json caption; "folder" image files under `path`, labelled by their class
    sub-folder (or their name, in a flat folder); "lines" the first lines of a list file
    (`<id> <label>`), image `images/<id><suffix>`; "cifar" the first rows of a pickled batch;
    "annotations" a JSON list whose records name images (`field`, joined onto `images` by
    `join`, one of vlprep.annotations.JOINS; records at the ijson prefix `records`), drawn with
    their `text` fields and any RLE masks; "coco" a COCO-style file (images, annotations with
    captions, boxes, polygons or RLE masks, categories); "segmap" images in `images` (ending in
    `suffix`) over their label maps in `maps` (`map_suffix`), listed from `split` (ids, one a
    line), or else from `path`, the folder of either side the consumer lists; "none": no
    image at all, `why`. Paths are templates over the registry's roots.
    """

    kind: str
    path: str = ""
    images: str = ""
    field: str = "image"
    join: str = "path"
    records: str = "item"
    text: tuple[str, ...] = ("caption",)
    suffix: str = ""
    maps: str = ""
    map_suffix: str = ""
    split: str = ""
    why: str = ""

    @classmethod
    def of_refs(cls, path: str, root: str, refs: ImageRefs, **extra: Any) -> "Samples":
        """The samples of an annotation file whose images `refs` says how the consumer opens
        (vis_root under the `root` layout)."""
        return cls(
            "annotations",
            path,
            images=f"{{{root}}}/{refs.vis_root}",
            field=refs.field,
            join=refs.join,
            records=refs.records,
            **extra,
        )


@dataclass(frozen=True)
class Product:
    """A unit a user asks for by name (`snakemake coco_valid`): its own target rule.

    `files` are what the target rule requires (path templates); `entries` the catalog entries
    it downloads and `url_lists` the URL lists it crawls images from (what preflight adds up,
    and what a dry run of it must plan, no more, no less: tests/unit/test_registry.py);
    `bundles` the layout bundles that build it; `checks` the vlprep.consumers checks that
    cover it; `in_all` whether `all` builds it unless the config says otherwise; `demo` whether
    the demo builds it; `about` one line for the config's description; `opt_in` a product its
    bundle leaves out (built by name, or by `all` when the config enables it: hundreds of GB
    nobody wants by accident); `notes` what preflight says of it beyond its downloads;
    `samples` where the report's grid of sample images is drawn from.
    """

    name: str
    bundles: tuple[str, ...]
    files: tuple[str, ...]
    entries: tuple[str, ...]
    url_lists: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    in_all: bool = False
    demo: bool = True
    about: str = ""
    opt_in: bool = False
    notes: tuple[str, ...] = ()
    samples: Samples | None = None

    def __post_init__(self) -> None:
        unknown = set(self.bundles) - set(LAYOUTS)
        if unknown or not self.bundles:
            raise ValueError(f"product {self.name}: bundles {sorted(unknown)} are not {LAYOUTS}")


@dataclass(frozen=True)
class UrlList:
    """A list of image URLs img2dataset downloads in parts (vlprep.i2d).

    `source` is the catalog entry the list comes from, `path` where the list the parts read
    is (a template), `format` its img2dataset input format, `i2d` the img2dataset arguments of
    the consumer's own download script (the config only tunes them), `shards` the layout
    folder the parts' shards are gathered into (None: the product places them itself), `named`
    the annotation kind (vlprep.named) whose file becomes the list first, for consumers that
    open images by name, and `retry_target` whether `<name>_retry_failed` exists.
    """

    name: str
    source: str
    path: str
    format: str
    i2d: dict[str, Any]
    shards: str | None = None
    named: str | None = None
    retry_target: bool = False


@dataclass
class Family:
    """What one family module adds to the registry (every table keyed by layout path, relative
    to the lavis/ root unless said otherwise)."""

    products: list[Product]
    url_lists: list[UrlList] = field(default_factory=list)
    # lavis/ annotation files and where their bytes come from: ("download", entry) or
    # ("extracted", entry, path inside)
    annotation_sources: dict[str, tuple] = field(default_factory=dict)
    # those whose records name images, and how their dataset class opens them
    annotation_images: dict[str, ImageRefs] = field(default_factory=dict)
    # files that drop what another file dropped: (the file they follow, list key, id field)
    companions: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    # image folders decoded once: name -> ("extracted", entry, folder) or ("layout", path)
    image_checks: dict[str, tuple] = field(default_factory=dict)
    # lavis/ folders that show one store folder: path -> ("extracted", entry, folder inside)
    linked_dirs: dict[str, tuple[str, str, str]] = field(default_factory=dict)


# img2dataset arguments of URL lists whose consumers open images by name (vlprep.named): one
# download keeps each image's original bytes (decoded once by img2dataset, to drop junk).
BY_NAME_I2D = {
    "input_format": "parquet",
    "url_col": "url",
    "output_format": "files",
    "save_additional_columns": ["name"],
    "resize_mode": "no",
    "skip_reencode": True,
    "encode_format": "jpg",
}

"""Fuzzed annotation JSON through the reshapers that read downloaded files (vlprep.annotations,
vlprep.named, the GLaMM checks): records kept exactly as a reference says, damaged files
refused with an error naming the file (and the record), nothing at the output path then."""

import json
import os
import posixpath
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.fuzzing import fuzz
from vlprep import glamm_refer
from vlprep.annotations import ImageRefs, filter_by_ids, filter_by_images
from vlprep.errors import ConversionError, VlprepError
from vlprep.named import annotations_to_url_list


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")


@pytest.fixture
def numbered(tmp_path):
    """A fresh folder per example (the examples share tmp_path)."""
    count = iter(range(1_000_000))

    def fresh() -> Path:
        folder = tmp_path / str(next(count))
        folder.mkdir()
        return folder

    return fresh


# JSON values as the streaming parser (yajl) gives them back unchanged: no lone surrogates
# (it replaces them, or passes them on as bytes that are not UTF-8), integers within 64 bits
# but -2**63 (it refuses those as an overflow: the file is then refused), finite floats.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63) + 1, 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def dump(value, draw) -> bytes:
    """JSON text of `value` in one of the ways upstream files are laid out."""
    indent = draw(st.sampled_from([None, None, 1]))
    return json.dumps(value, ensure_ascii=draw(st.booleans()), indent=indent).encode("utf-8")


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """`data` cut, or with a few bytes dropped or stuffed in."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(["cut", "drop", "insert"]))
        if how == "cut":
            del data[at:]
        elif how == "drop":
            del data[at : at + 1]
        else:
            filler = [b"{", b"}", b'"', b",", b"]", b"[", b"\\", b"\xff", b"\x00", b"[" * 50]
            data[at:at] = draw(st.sampled_from(filler))
    return bytes(data)


# ---- vlprep.annotations.filter_by_images / filter_by_ids ------------------------------------

VIS_ROOT = "lavis_images"
PRESENT = ["1.jpg", "2.jpg", "é.jpg", "sub/3.jpg", "bad.jpg"]
UNDECODABLE = {"bad.jpg": "cannot identify image file"}
TRUNCATED = {"2.jpg": "image file is truncated"}
IMAGE_VALUES = st.sampled_from(
    PRESENT
    + ["1", "sub/3", "2"]  # what an id_jpg join turns into an image
    + ["missing.jpg", "folder.jpg", "../escape.jpg", "/abs/1.jpg", "/export/x/1.jpg"]
    + ["sub/../1.jpg", "sub/", "", ".", "a\0b.jpg", 1, 2, True, None, 1.5, ["1.jpg"], {}]
)
ID_VALUES = st.one_of(
    st.integers(0, 5), st.sampled_from(["1", 1.0, None, True, [1], [1.0], {"q": 1}, [], {}])
)


def image_world(root: Path) -> Path:
    """A layout root whose image folder holds PRESENT (and a folder named like an image)."""
    images = root / VIS_ROOT
    for name in PRESENT:
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        (images / name).write_bytes(b"image " + name.encode())
    (images / "folder.jpg").mkdir()
    return root


def opened_name(refs: ImageRefs, record) -> str | None:
    """The path under vis_root the consumer opens for `record` (annotations.JOINS, as the
    docstrings of LAVIS's loaders describe them), or None if it has no usable field."""
    if not isinstance(record, dict):
        return None
    value = record.get(refs.field)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        return None
    value = str(value)
    if refs.rewrite == "basename":
        value = posixpath.basename(value)
    return {
        "path": value,
        "basename": posixpath.basename(value),
        "id_jpg": f"{value}.jpg",
    }[refs.join]


def opens(refs: ImageRefs, record, root: Path, allow_truncated: bool) -> bool:
    """Does the consumer open the record's image: a file inside vis_root that decodes?"""
    name = opened_name(refs, record)
    if name is None or "\0" in name:
        return False
    folder = root / VIS_ROOT
    path = os.path.normpath(os.path.join(folder, name))
    if not path.startswith(str(folder) + os.sep) or not os.path.isfile(path):
        return False
    rel = os.path.relpath(path, folder)
    return rel not in UNDECODABLE and (allow_truncated or rel not in TRUNCATED)


@st.composite
def annotation_files(draw) -> tuple[ImageRefs, list, bytes]:
    """(refs, records, the file's bytes): a list of records, or MiniGPT-4's {"annotations"}."""
    refs = ImageRefs(
        VIS_ROOT,
        draw(st.sampled_from(["image", "image_id"])),
        draw(st.sampled_from(["path", "basename", "id_jpg"])),
        {"": "images"},
        rewrite=draw(st.sampled_from([None, "basename"])),
        records=draw(st.sampled_from(["item", "annotations.item"])),
        id_field=draw(st.sampled_from([None, "question_id"])),
    )
    record = st.fixed_dictionaries(
        {refs.field: IMAGE_VALUES},
        optional={"question_id": ID_VALUES, "caption": TEXT, "extra": VALUES},
    )
    records = draw(st.lists(st.one_of(record, record, record, VALUES), max_size=8))
    wrapped = refs.records != "item" and draw(st.booleans())
    data = {"info": draw(VALUES), "annotations": records} if wrapped else records
    return refs, records, dump(data, draw)


def expected_records(refs, records, root, allow_truncated) -> list:
    kept = [r for r in records if opens(refs, r, root, allow_truncated)]
    if refs.rewrite:
        kept = [{**r, refs.field: posixpath.basename(str(r[refs.field]))} for r in kept]
    return kept


@fuzz(200)
@given(case=annotation_files(), allow_truncated=st.booleans(), companion=st.data())
@example(
    case=(
        ImageRefs(VIS_ROOT, "image", "path", {"": "images"}, id_field="question_id"),
        [{"image": "missing.jpg", "question_id": [1]}, {"image": "1.jpg", "question_id": 2}],
        b'[{"image": "missing.jpg", "question_id": [1]}, {"image": "1.jpg", "question_id": 2}]',
    ),
    allow_truncated=True,
    companion=None,
)
def test_kept_records_are_exactly_those_whose_image_opens(
    numbered, case, allow_truncated, companion
):
    """filter_by_images keeps exactly the records whose image its consumer opens, in order,
    or refuses (none kept) naming the file; filter_by_ids then drops the same ids from a
    companion file, whatever JSON value an id is."""
    refs, records, data = case
    folder = numbered()
    root = image_world(folder / "lavis")
    src = folder / "store" / "annotations.json"
    src.parent.mkdir()
    src.write_bytes(data)
    dst = root / "annotations" / "out.json"
    checks = {
        "images": {
            "undecodable": [{"name": n, "reason": r} for n, r in UNDECODABLE.items()],
            "damaged": [{"name": n, "reason": r} for n, r in TRUNCATED.items()],
        }
    }
    kept = expected_records(refs, records, root, allow_truncated)
    try:
        report = filter_by_images(
            src, dst, refs=refs, layout_root=root, checks=checks,
            allow_truncated=allow_truncated, link_mode="symlink",
        )  # fmt: skip
    except ConversionError as err:
        assert str(src) in str(err)
        assert not kept, err
        assert not dst.exists()
        event("nothing kept")
        return
    assert json.loads(dst.read_text("utf-8")) == kept
    assert (report["records"], report["kept"]) == (len(records), len(kept))
    if dst.is_symlink():  # presented as the source itself only if it is that list unchanged
        assert report["kept"] == report["records"] and isinstance(json.loads(data), list)
    if not refs.id_field:
        return
    dropped = report["dropped_ids"]
    assert dropped == [
        r.get("question_id")
        for r in records
        if isinstance(r, dict) and not opens(refs, r, root, allow_truncated)
    ]
    # the companion (VQA's official questions) names the same ids, and some others
    questions = [
        {"question_id": r.get("question_id"), "n": n}
        for n, r in enumerate(records)
        if isinstance(r, dict)
    ]
    if companion is not None:
        questions += companion.draw(
            st.lists(st.fixed_dictionaries({"question_id": ID_VALUES}), max_size=4)
        )
    side = folder / "store" / "questions.json"
    side.write_text(json.dumps({"info": {"v": 1}, "questions": questions}))
    side_dst = root / "annotations" / "questions.json"
    filter_by_ids(
        side, side_dst, list_key="questions", id_field="question_id", dropped=dropped,
        link_mode="symlink",
    )  # fmt: skip
    written = json.loads(side_dst.read_text("utf-8"))
    assert written["info"] == {"v": 1}
    assert written["questions"] == [q for q in questions if q["question_id"] not in dropped]
    event("companion filtered")


LONE_SURROGATE = b'[{"image": "1.jpg", "caption": "\\ud800{"}]'


@fuzz(150)
@given(case=annotation_files().flatmap(lambda c: damaged(c[2]).map(lambda raw: (c[0], raw))))
@example(case=(ImageRefs(VIS_ROOT, "image", "path", {"": "images"}), LONE_SURROGATE))
@example(case=(ImageRefs(VIS_ROOT, "image", "path", {"": "images"}), b"\xff"))
def test_a_damaged_annotation_file_is_refused_naming_it(numbered, case):
    """Broken JSON (cut, a byte lost or stuffed in) gives a report or a ConversionError that
    names the file, for both filters; never another exception, nothing at the output then."""
    refs, raw = case
    folder = numbered()
    root = image_world(folder / "lavis")
    src = folder / "annotations.json"
    src.write_bytes(raw)
    checks = {"images": {"undecodable": [], "damaged": []}}
    dst = root / "out.json"
    try:
        filter_by_images(src, dst, refs=refs, layout_root=root, checks=checks,
                         allow_truncated=True, link_mode="copy")  # fmt: skip
        event("filtered")
    except ConversionError as err:
        assert str(src) in str(err)
        assert not dst.exists()
        event("refused")
    side_dst = root / "side.json"
    try:
        filter_by_ids(src, side_dst, list_key="annotations", id_field="question_id",
                      dropped=[1, [1], {"q": 1}], link_mode="copy")  # fmt: skip
    except ConversionError as err:
        assert str(src) in str(err)
        assert not side_dst.exists()


# ---- vlprep.named.annotations_to_url_list ---------------------------------------------------

NAME_VALUES = st.sampled_from(
    ["a.jpg", "é 1.jpg", "x/y/b.jpg", "/abs/c.jpg", "d/", "..", ".", "", "e\\f.jpg"]
    + ["n\0.jpg", 5, None, ["a.jpg"]]
)
URL_VALUES = st.sampled_from(["http://h/1.jpg", "https://h/é.jpg", "", 3, None])


def sbu_row(record) -> dict | None:
    """LAVIS sbu.json record -> URL-list row (name: the base name VPGTrans opens), or None."""
    if not isinstance(record, dict):
        return None
    image, caption, url = record.get("image"), record.get("caption"), record.get("url")
    if not (isinstance(image, str) and image and isinstance(url, str) and url):
        return None
    name = posixpath.basename(image)
    if not isinstance(caption, str) or not plain_name(name):
        return None
    return {"url": url, "caption": caption, "name": name}


def nocaps_row(record) -> dict | None:
    if not isinstance(record, dict):
        return None
    name, url = record.get("file_name"), record.get("coco_url")
    if not (isinstance(name, str) and plain_name(name) and isinstance(url, str) and url):
        return None
    return {"url": url, "name": name}


def plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not set("/\\\0") & set(name)


@st.composite
def url_list_files(draw) -> tuple[str, list, bytes]:
    kind = draw(st.sampled_from(["sbu", "nocaps"]))
    if kind == "sbu":
        fields = {"image": NAME_VALUES, "caption": st.one_of(TEXT, st.none()), "url": URL_VALUES}
    else:
        fields = {"file_name": NAME_VALUES, "coco_url": URL_VALUES, "id": st.integers(0, 9)}
    keys = list(fields)
    record = st.fixed_dictionaries(
        {k: v for k, v in fields.items() if k in keys[:2]},
        optional={k: v for k, v in fields.items() if k not in keys[:2]} | {"x": VALUES},
    )
    records = draw(st.lists(st.one_of(record, record, record, VALUES), max_size=8))
    data = records if kind == "sbu" else {"licenses": draw(VALUES), "images": records}
    return kind, records, dump(data, draw)


@fuzz(200)
@given(case=url_list_files())
@example(case=("sbu", [], b"[]"))
@example(case=("nocaps", [], b'{"images": {"a": 1}}'))
def test_url_list_rows_are_the_records_or_an_error_names_the_first_bad_one(numbered, case):
    kind, records, data = case
    folder = numbered()
    src = folder / f"{kind}.json"
    src.write_bytes(data)
    dest = folder / "urls.parquet"
    to_row = sbu_row if kind == "sbu" else nocaps_row
    rows = [to_row(r) for r in records]
    try:
        count = annotations_to_url_list(src, dest, kind=kind)
    except ConversionError as err:
        assert str(src) in str(err) and not dest.exists()
        bad = [i for i, row in enumerate(rows) if row is None]
        if bad:
            assert f"record {bad[0]}" in str(err), err
        else:
            assert not rows or kind == "nocaps", err  # no record at all (or not a list)
        event("refused")
        return
    assert None not in rows and count == len(rows) > 0
    assert pq.read_table(dest).to_pylist() == rows
    event("written")


@fuzz(100)
@given(case=url_list_files().flatmap(lambda c: damaged(c[2]).map(lambda raw: (c[0], raw))))
@example(case=("sbu", LONE_SURROGATE))
def test_a_damaged_url_list_source_is_refused_naming_it(numbered, case):
    kind, raw = case
    folder = numbered()
    src = folder / f"{kind}.json"
    src.write_bytes(raw)
    dest = folder / "urls.parquet"
    try:
        annotations_to_url_list(src, dest, kind=kind)
    except ConversionError as err:
        assert str(src) in str(err) and not dest.exists()


# ---- the GLaMM checks of downloaded annotation files ---------------------------------------

COCO_NAMES = st.sampled_from(["COCO_train2014_000000000009.jpg", "x.jpg", "", 7, None, ["a"]])
COCO_IMAGE = st.fixed_dictionaries({}, optional={"file_name": COCO_NAMES, "id": st.integers()})


@st.composite
def glamm_json(draw) -> bytes:
    """A COCO-style file (images list) or a GranD-f record list, odd in shape or damaged."""
    shape = draw(st.sampled_from(["coco", "records", "other", "damaged"]))
    if shape == "coco":
        images = st.lists(st.one_of(COCO_IMAGE, COCO_IMAGE, VALUES), max_size=4)
        value = draw(st.fixed_dictionaries({"images": images}, optional={"x": VALUES}))
    elif shape == "records":
        value = draw(st.lists(st.one_of(COCO_IMAGE, VALUES), max_size=4))
    else:
        value = draw(VALUES)
    data = dump(value, draw)
    if shape == "damaged":
        data = draw(damaged(data))
    if draw(st.integers(0, 9)) == 0:
        data = b"\xff\xfe" + data  # not UTF-8
    return data


@fuzz(150)
@given(files=st.lists(glamm_json(), min_size=1, max_size=4), with_images=st.booleans())
@example(files=[b"\xff"], with_images=False)
@example(files=[b'{"images": [1]}', b'[{"file_name": 7}]'], with_images=True)
def test_glamm_checks_report_problems_never_crash(numbered, files, with_images):
    """check_mdetr / check_grandf read downloaded files of any shape: a list of problems, each
    naming the file it is about (or a vlprep error), never a traceback of their own."""
    root = numbered()
    paths = [
        *(f"RefCoco_Reg/mdetr_annotations/{n}" for n in glamm_refer.MDETR_COCO),
        f"flikcr_30k/mdetr_annotations/{glamm_refer.MDETR_FLICKR}",
        *(f"GranDf/annotations/train/{n}" for n in glamm_refer.GRANDF_TRAIN),
        *(f"GranDf/annotations/val_test/{n}" for n in glamm_refer.GRANDF_VAL_TEST),
    ]
    for index, rel in enumerate(paths):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(files[index % len(files)])
    if with_images:
        for folder in ("RefCoco_Reg/coco_2014", "flikcr_30k/flickr30k-images",
                       "GranDf/GranDf_HA_images/train", "GranDf/GranDf_HA_images/val_test"):  # fmt: skip
            (root / folder).mkdir(parents=True)
            (root / folder / "x.jpg").write_bytes(b"jpeg")
    for check in (glamm_refer.check_mdetr, glamm_refer.check_grandf):
        try:
            problems = check(root)
        except VlprepError as err:
            assert str(root) in str(err)
            continue
        assert all(isinstance(p, str) and p.startswith("glamm ") for p in problems), problems
        event(f"{check.__name__}: {'problems' if problems else 'clean'}")

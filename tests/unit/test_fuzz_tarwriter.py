"""Fuzzed samples through the tar writer, read back by tarfile and by the real webdataset:
every member's name and bytes exact, fixed metadata, and each sample whole and in order."""

import tarfile
from pathlib import Path

import pytest
import webdataset as wds
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzzing import fuzz
from vlprep.tarwriter import write_tar

# A key is what webdataset groups a sample by: a member name up to the first dot of its base
# name. So no dot, no empty folder or base name, and not `__x__` (webdataset skips those as
# metadata). Surrogates only as surrogateescape makes them from undecodable file names.
KEY_CHARS = st.characters(
    exclude_categories=("Cs",), exclude_characters="./\0", max_codepoint=0x1F9FF
) | st.sampled_from(["\udc80", "\udcff", "-", "_", " ", "\n", "0"])
COMPONENT = st.text(KEY_CHARS, min_size=1, max_size=12).filter(
    lambda c: not (c.startswith("__") and c.endswith("__"))
)
KEYS = st.one_of(
    COMPONENT,
    st.lists(COMPONENT, min_size=2, max_size=3).map("/".join),
    st.integers(0, 10**6).map(lambda n: f"{n:09d}"),  # img2dataset's and nxtp's keys
    st.just("k" * 120),  # past the 100 bytes of a ustar name: a pax record
)
# webdataset lower-cases extensions, so they are written in lower case; a dot inside one is
# part of it (`seg.png`)
EXTENSIONS = st.sampled_from(["jpg", "txt", "json", "cls", "seg.png", "x1", "a.b.c"])
CAPTIONS = st.text(st.characters(exclude_categories=("Cs",)), max_size=40).map(
    lambda t: t.encode("utf-8")
)
PAYLOADS = st.one_of(
    st.binary(max_size=600), CAPTIONS, st.just(b""), st.binary(min_size=1000, max_size=5000)
)
SAMPLES = st.dictionaries(
    KEYS, st.dictionaries(EXTENSIONS, st.tuples(PAYLOADS, st.booleans()), min_size=1, max_size=4)
)


@pytest.fixture
def numbered(tmp_path):
    """A fresh folder per example (the examples share tmp_path)."""
    count = iter(range(1_000_000))
    return lambda: tmp_path / str(next(count))


def written(folder: Path, samples: dict) -> tuple[Path, dict[str, bytes]]:
    """The samples as one tar: payloads flagged True come from a file (sent by the kernel),
    the others are given as bytes. Returns the tar and {member name: bytes}."""
    folder.mkdir()
    members, expected = [], {}
    for number, (key, files) in enumerate(samples.items()):
        for ext, (payload, from_file) in files.items():
            name = f"{key}.{ext}"
            expected[name] = payload
            source: bytes | Path = payload
            if from_file:
                source = folder / f"payload{number}.{ext}"
                source.write_bytes(payload)
            members.append((name, source))
    members.reverse()  # the writer sorts; the caller's order must not matter
    tar = folder / "shard.tar"
    size = write_tar(tar, members)
    assert size == tar.stat().st_size and size % tarfile.RECORDSIZE == 0
    return tar, expected


@fuzz(150)
@given(samples=SAMPLES)
@example(samples={"a": {"jpg": (b"x", False)}, "a!": {"jpg": (b"y", True)}})
@example(samples={"\udcff" * 60: {"txt": ("é".encode(), False)}})
@example(samples={})
def test_tarfile_reads_back_every_member_exactly(numbered, samples):
    tar, expected = written(numbered(), samples)
    with tarfile.open(tar) as tf:
        infos = tf.getmembers()
        assert [i.name for i in infos] == sorted(expected)
        for info in infos:
            assert info.isreg()
            assert (info.mtime, info.uid, info.gid, info.mode) == (0, 0, 0, 0o644)
            assert (info.uname, info.gname) == ("", "")
            assert tf.extractfile(info).read() == expected[info.name]


@fuzz(150)
@given(samples=SAMPLES)
@example(samples={"a": {"jpg": (b"x", False)}, "a!": {"jpg": (b"y", True)}})
@example(samples={"a/b": {"seg.png": (b"", True), "txt": (b"c", False)}, "a": {"txt": (b"", True)}})
def test_webdataset_reads_each_sample_whole_in_member_order(numbered, samples):
    """Each key's files come back as one sample with the exact bytes, and samples come in the
    order of their members' names (sorted), which is the order the writer promises."""
    tar, _ = written(numbered(), samples)
    got = [
        (sample["__key__"], {k: v for k, v in sample.items() if not k.startswith("__")})
        for sample in wds.WebDataset(str(tar), shardshuffle=False, empty_check=False)
    ]
    order = []
    for name in sorted(f"{key}.{ext}" for key, files in samples.items() for ext in files):
        key = next(k for k in samples if name.startswith(k + ".") and "." not in k)
        if not order or order[-1] != key:
            order.append(key)
    assert len(order) == len(samples)  # sorting keeps each sample's members together
    want = [(key, {ext: payload for ext, (payload, _) in samples[key].items()}) for key in order]
    assert got == want


@fuzz(30)
@given(
    name=st.text(KEY_CHARS, min_size=0, max_size=110).map(lambda t: t + "\0" + "x.txt"),
    payload=st.binary(max_size=10),
)
@example(name="a\0b.txt", payload=b"x")
def test_a_name_with_a_nul_byte_is_refused_not_cut(numbered, name, payload):
    """A ustar name ends at its first NUL: `a\\0b.txt` would come back as `a`."""
    folder = numbered()
    with pytest.raises(ValueError, match="NUL"):
        write_tar(folder / "shard.tar", [(name, payload)])
    assert not folder.exists() or not any(folder.iterdir())


@fuzz(30)
@given(samples=SAMPLES.filter(bool), data=st.data())
def test_a_duplicate_name_is_refused_and_nothing_is_written(numbered, samples, data):
    key = data.draw(st.sampled_from(sorted(samples)))
    ext = data.draw(st.sampled_from(sorted(samples[key])))
    folder = numbered()
    folder.mkdir()
    members = [(f"{k}.{e}", p) for k, files in samples.items() for e, (p, _) in files.items()]
    members.append((f"{key}.{ext}", b"again"))
    with pytest.raises(ValueError, match="duplicate tar member name"):
        write_tar(folder / "shard.tar", members)
    assert list(folder.iterdir()) == []

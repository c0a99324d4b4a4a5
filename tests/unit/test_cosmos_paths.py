"""COSMOS's hard-coded roots: the checkout edits, the patch, the alias that replaces nothing."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.cosmos_clone import SUBPATHS, fake_checkout
from vlprep.cosmos_paths import (
    BACKUP_SUFFIX,
    MMSEG_ALIAS,
    apply_edits,
    checkout_edits,
    fixed_paths,
    make_alias,
    render_patch,
)
from vlprep.errors import VlprepError


def test_edits_rewrite_each_root_and_keep_each_subpath(tmp_path):
    checkout = fake_checkout(tmp_path / "cosmos")
    edits = checkout_edits(checkout, "/data/cosmos/mmseg", "/data/cosmos/classification")
    assert len(edits) == 9
    by_name = {e.file.name: e for e in edits}
    for name, sub in SUBPATHS.items():
        edit = by_name[f"cfg_{name}.py"]
        assert edit.new == f"data_root = '/data/cosmos/mmseg/{sub}'"
        assert edit.line == 6
    assert by_name["utils.py"].new == 'dataset_root = "/data/cosmos/classification" '


def test_the_patch_applies_with_patch_and_applied_edits_match_it(tmp_path):
    a, b = fake_checkout(tmp_path / "a"), fake_checkout(tmp_path / "b")
    patch = render_patch(checkout_edits(a, "/m", "/c"), a)
    subprocess.run(["patch", "-p1", "-d", str(a)], input=patch, text=True, check=True)
    apply_edits(checkout_edits(b, "/m", "/c"))
    for path in sorted(a.rglob("*.py")):
        assert path.read_text() == (b / path.relative_to(a)).read_text(), path
    # applied: originals kept, and a second pass finds nothing left to do
    backups = sorted(b.rglob(f"*{BACKUP_SUFFIX}"))
    assert len(backups) == 9
    assert all(MMSEG_ALIAS in b.read_text() for b in backups if b.name.startswith("cfg_"))
    assert checkout_edits(b, "/m", "/c") == []


def test_a_second_apply_keeps_the_pristine_backup(tmp_path):
    checkout = fake_checkout(tmp_path / "c")
    utils = checkout / "src/dataloaders/utils.py"
    pristine = utils.read_text()
    apply_edits(checkout_edits(checkout, "/m1", "/c1"))
    apply_edits(checkout_edits(checkout, "/m2", "/c2"))
    assert Path(str(utils) + BACKUP_SUFFIX).read_text() == pristine
    assert 'dataset_root = "/c2"' in utils.read_text()


def test_not_a_checkout_and_unknown_roots_are_refused(tmp_path):
    with pytest.raises(VlprepError, match="root of a COSMOS clone"):
        checkout_edits(tmp_path, "/m", "/c")
    checkout = fake_checkout(tmp_path / "c")
    config = checkout / "src/training/seg_configs/cfg_voc21.py"
    config.write_text(config.read_text().replace(MMSEG_ALIAS, "/elsewhere"))
    with pytest.raises(VlprepError, match=r"cfg_voc21.py:6: data_root '/elsewhere/"):
        checkout_edits(checkout, "/m", "/c")
    config.write_text("x = 1\n")
    with pytest.raises(VlprepError, match="expected one `data_root"):
        checkout_edits(checkout, "/m", "/c")


def test_the_alias_is_made_once_and_replaces_nothing(tmp_path):
    target = tmp_path / "cosmos/mmseg"
    target.mkdir(parents=True)
    alias = tmp_path / "mmsegmentation_datasets/data"
    assert make_alias(alias, target).endswith("created")
    assert os.path.realpath(alias) == str(target)
    assert make_alias(alias, target).endswith("already in place")
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    with pytest.raises(VlprepError, match="not to .*remove it yourself"):
        make_alias(alias, elsewhere)
    folder = tmp_path / "taken"
    (folder / "data").mkdir(parents=True)
    with pytest.raises(VlprepError, match="exists \\(a folder\\); vlprep replaces nothing"):
        make_alias(folder / "data", target)
    assert (folder / "data").is_dir() and not (folder / "data").is_symlink()


def test_an_alias_without_permission_says_the_root_command():
    """As a user who may not write where the alias goes (as root, the test drops to nobody:
    every folder is writable to root)."""
    scripts = Path(__file__).resolve().parents[2] / "scripts"
    code = (
        "import sys; from vlprep.cosmos_paths import make_alias\n"
        "try: make_alias(sys.argv[1], sys.argv[2])\n"
        "except Exception as e: print(type(e).__name__, e)\n"
    )
    base = Path(tempfile.mkdtemp(prefix="vlprep-alias-"))  # traversable by nobody
    try:
        base.chmod(0o755)
        locked = base / "locked"
        locked.mkdir(mode=0o555)
        locked.chmod(0o555)
        command = [sys.executable, "-c", code, str(locked / "data"), str(base)]
        if os.geteuid() == 0:
            if not (shutil.which("setpriv") and Path("/usr/bin/python3").exists()):
                pytest.skip("root, and no setpriv or system python to drop to nobody")
            drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            command = [*drop, "/usr/bin/python3", *command[1:]]
        result = subprocess.run(
            command, env={"PYTHONPATH": str(scripts)}, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("VlprepError no permission to create"), result.stdout
        assert f"as root run:\n  mkdir -p {locked} && ln -s {base} {locked}/data" in result.stdout
        assert not (locked / "data").exists()
    finally:
        (base / "locked").chmod(0o755)
        shutil.rmtree(base)


def test_fixed_paths_without_apply_prints_the_patch_and_changes_nothing(tmp_path):
    checkout = fake_checkout(tmp_path / "c")
    before = {p: p.read_text() for p in checkout.rglob("*.py")}
    lines = fixed_paths({"checkout": str(checkout)}, str(tmp_path / "m"), str(tmp_path / "k"))
    assert "9 line(s)" in lines[0]
    assert lines[1].startswith("--- a/src/")
    assert {p: p.read_text() for p in checkout.rglob("*.py")} == before

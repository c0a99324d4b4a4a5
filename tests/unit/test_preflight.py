"""preflight adds up what a run needs and names what would stop it, without downloading."""

from pathlib import Path

import yaml

from vlprep.preflight import Preflight, render

CATALOG = {
    "big_zip": {
        "description": "d", "kind": "http", "url": "https://h/big.zip", "size": 10**16,
        "sha256": "a" * 64, "archive": "zip", "license": "l", "citation": "c",
    },
    "small_json": {
        "description": "d", "kind": "http", "url": "https://h/small.json", "size": 1000,
        "license": "l", "citation": "c",
    },
    "sha1_json": {  # PASCAL-Context's trainval_merged.json publishes SHA-1 only
        "description": "d", "kind": "http", "url": "https://h/trainval_merged.json",
        "size": 2000, "sha1": "b" * 40, "license": "l", "citation": "c",
    },
    "by_hand": {
        "description": "d", "kind": "manual", "filename": "signed.tar", "size": 5000,
        "instructions": "log in at https://example.org and download signed.tar",
        "license": "l", "citation": "c",
    },
}  # fmt: skip


def plan(tmp_path: Path, products: dict) -> dict:
    return {
        "products": products,
        "bundles": {"everything": list(products)},
        "data_root": str(tmp_path / "data"),
        "downloads": str(tmp_path / "data" / "downloads"),
        "extracted": str(tmp_path / "data" / "extracted"),
        "manual_dir": str(tmp_path / "manual"),
        "link_mode": "symlink",
    }


def run(tmp_path, products):
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(CATALOG))
    return Preflight(plan(tmp_path, products), str(path), None).run()


def test_sizes_add_up_and_shrink_once_downloaded(tmp_path):
    products = {"small": {"entries": ["small_json"], "url_lists": {}, "enabled": True}}
    report = run(tmp_path, products)
    assert report["targets"]["small"]["download"] == 1000
    assert report["problems"] == []
    assert any("small_json: no published checksum" in n for n in report["notes"])
    stored = tmp_path / "data" / "downloads" / "small_json" / "small.json"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"x" * 1000)
    assert run(tmp_path, products)["targets"]["small"]["download"] == 0


def test_not_enough_disk_and_missing_manual_files_are_problems(tmp_path):
    products = {
        "huge": {"entries": ["big_zip"], "url_lists": {}, "enabled": True},
        "signed": {"entries": ["by_hand"], "url_lists": {"laion115m": 1000}, "enabled": False},
    }
    report = run(tmp_path, products)
    assert report["targets"]["huge"]["disk"] >= 2 * 10**16  # the zip and its unpacked tree
    assert not report["targets"]["all"]["fits"]
    assert any(p.startswith("all: needs about") for p in report["problems"])
    # the file's name and place, where to get it, and what it must be
    (manual,) = [p for p in report["problems"] if p.startswith("by_hand:")]
    assert "save it as " in manual and "/manual/signed.tar" in manual and "example.org" in manual
    assert "checksum: none published" in manual or "sha256: " in manual
    assert report["targets"]["signed"]["estimated"] == ["laion115m (1,000 rows)"]
    text = render(report, ["huge"])
    assert "problem(s) to fix before the run" in text and "*huge" in text


def test_an_entry_with_a_sha1_is_not_listed_as_unverified(tmp_path):
    products = {"ctx": {"entries": ["sha1_json", "small_json"], "url_lists": {}, "enabled": True}}
    report = run(tmp_path, products)
    assert [n.split(":")[0] for n in report["notes"] if "checksum" in n] == ["small_json"]
    assert "1 source(s) publish no checksum" in render(report, ["ctx"])


def test_sources_that_no_url_answers_are_problems_with_how_to_get_them(tmp_path):
    import threading
    from http.server import HTTPServer, SimpleHTTPRequestHandler

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "here.zip").write_bytes(b"PK")
    handler = lambda *a: SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "www"))  # noqa: E731
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    catalog = {
        name: {"description": "d", "kind": "http", "url": f"http://origin.invalid/{file}",
               "license": "l", "citation": "c"}
        for name, file in (("here", "here.zip"), ("gone", "gone.zip"), ("dead", "dead.zip"))
    }  # fmt: skip
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    mirrors = {
        "http://origin.invalid/here": [f"{base}/here"],
        "http://origin.invalid/gone": [f"{base}/gone"],
        "http://origin.invalid/dead": ["http://127.0.0.1:9/dead"],  # nothing listens
    }
    products = {"p": {"entries": sorted(catalog), "url_lists": {}, "enabled": True}}

    def run_preflight():
        http = {"mirrors": mirrors, "try_original": False}
        return Preflight(plan(tmp_path, products), str(path), None, http).run()

    try:
        report = run_preflight()
        problems = {p.split(":")[0]: p for p in report["problems"]}
        assert sorted(problems) == ["dead", "gone"]
        assert f"{base}/gone.zip: HTTP 404" in problems["gone"]
        assert "ConnectionError" in problems["dead"]
        assert "save it as " in problems["gone"] and "/manual/gone.zip" in problems["gone"]
        # a copy in manual_dir is the answer: no longer a problem
        (tmp_path / "manual").mkdir(exist_ok=True)
        for name in ("gone.zip", "dead.zip"):
            (tmp_path / "manual" / name).write_bytes(b"PK")
        assert run_preflight()["problems"] == []
    finally:
        server.shutdown()


def test_what_a_product_needs_beyond_its_downloads_is_said():
    report = {
        "targets": {},
        "free": 10**12,
        "notes": [],
        "problems": [],
        "product_notes": {"glamm_grand": ["its images are SA-1B: accept the licence at X"]},
    }
    assert "  - glamm_grand: its images are SA-1B: accept the licence at X" in render(report, [])

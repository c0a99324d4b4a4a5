"""The browser check itself, on small reports made here: it passes a sound one, and names each
fault of a faulty one (a broken image, a request leaving the file, a script error, a missing
section), so that a pass on the demo's report means something."""

import base64
import http.server
import io
import threading

import pytest
from PIL import Image

from tests.browser.chromium import skip_reason
from tests.browser.report_ui import walk
from tests.browser.small_reports import jpeg, small_report

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or ""),
]


def png_data_uri() -> str:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def summary(body: str) -> bytes:
    return f"<!doctype html><html><body><h1>summary</h1>{body}</body></html>".encode()


SOUND = {
    ("g3m", "coco_valid", "samples.jpg"): jpeg(320, 200, 1),
    ("g3m", "coco_valid", "summary.html"): summary(f'<img src="{png_data_uri()}">'),
    ("g3m", "cc3m", "samples.jpg"): jpeg(200, 320, 2),
    ("g3m", "cc3m", "summary.html"): summary("<p>no picture</p>"),
    ("cosmos", "cosmos_cifar10", "samples.jpg"): jpeg(64, 64, 3),
    ("cosmos", "cosmos_cifar10", "summary.html"): summary("<svg width='9' height='9'></svg>"),
}


@pytest.fixture
def loopback_host():
    """An HTTP server on loopback that counts the requests it gets."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_a_sound_report_passes(tab, tmp_path, artifacts):
    report = small_report(tmp_path, SOUND, labelled=True)
    shots = artifacts / "small-report"
    expected = {"g3m": ["coco_valid", "cc3m"], "cosmos": ["cosmos_cifar10"]}

    seen = walk(tab, report, expected, shots, require=("img", "html"))

    assert seen.problems == []
    assert seen.sections == {"cosmos": ["cosmos_cifar10"], "g3m": ["cc3m", "coco_valid"]}
    # Every result was opened, both views of each row by its toggle, in the UI's order; the
    # logo and each shown picture loaded.
    assert [(r.subcategory, r.label, r.kind) for r in seen.results] == [
        ("cosmos_cifar10", "cosmos_cifar10 [samples.jpg]", "img"),
        ("cosmos_cifar10", "cosmos_cifar10 [summary.html]", "html"),
        ("cc3m", "cc3m [samples.jpg]", "img"),
        ("cc3m", "cc3m [summary.html]", "html"),
        ("coco_valid", "coco_valid [samples.jpg]", "img"),
        ("coco_valid", "coco_valid [summary.html]", "html"),
    ]
    assert [r.images for r in seen.results] == [2, 1, 2, 1, 2, 2]
    assert [p.name for p in seen.screenshots] == ["report-main.png", "report-coco_valid-grid.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in seen.screenshots)


def test_a_lone_category_and_subcategory_are_walked(tab, tmp_path, artifacts):
    """Snakemake offers a lone category as "Results" and opens a lone subcategory at once; a
    result it cannot show (JSON) is listed with a download button, which is left alone."""
    results = {k: v for k, v in SOUND.items() if k[1] == "cosmos_cifar10"}
    results[("cosmos", "cosmos_cifar10", "counts.json")] = b'{"images": 64}'
    report = small_report(tmp_path, results)
    seen = walk(tab, report, {"cosmos": ["cosmos_cifar10"]}, artifacts / "small-report-lone")
    assert seen.problems == []
    assert seen.sections == {"cosmos": ["cosmos_cifar10"]}
    # Unlabelled: one row per file, named by its path.
    assert [(r.label, r.kind) for r in seen.results] == [
        ("out/cosmos/cosmos_cifar10/counts.json", "file"),
        ("out/cosmos/cosmos_cifar10/samples.jpg", "img"),
        ("out/cosmos/cosmos_cifar10/summary.html", "html"),
    ]


def test_each_fault_is_named(tab, tmp_path, artifacts, loopback_host):
    host, hits = loopback_host
    faulty = {
        **SOUND,
        ("lavis", "broken_image", "samples.jpg"): b"\xff\xd8\xff\xe0 not a JPEG after all",
        ("lavis", "broken_image", "summary.html"): summary("<p>fine</p>"),
        ("lavis", "leaves_file", "samples.jpg"): jpeg(32, 32, 4),
        ("lavis", "leaves_file", "summary.html"): summary(
            f'<img src="https://images.example.com/cat.jpg"><img src="{host}/pixel.png">'
        ),
        ("lavis", "script_error", "samples.jpg"): jpeg(32, 32, 5),
        ("lavis", "script_error", "summary.html"): summary(
            "<script>console.error('chart data missing'); null.width;</script>"
        ),
    }
    report = small_report(tmp_path, faulty, labelled=True)
    expected = {
        "g3m": ["coco_valid", "cc3m"],
        "cosmos": ["cosmos_cifar10", "cosmos_dtd"],
        "lavis": ["broken_image", "leaves_file", "script_error"],
        "glamm": ["glamm_llava"],
    }

    seen = walk(tab, report, expected, artifacts / "small-report-faulty", require=("img",))
    problems = "\n".join(seen.problems)

    broken = "lavis / broken_image / broken_image [samples.jpg]: image data:image/jpeg"
    assert broken in problems
    leaving = "lavis / leaves_file / leaves_file [summary.html]: image "
    assert f"{leaving}https://images.example.com/cat.jpg... did not load" in problems
    assert f"{leaving}{host}/pixel.png... did not load" in problems
    assert "request leaving the report: https://images.example.com/cat.jpg" in problems
    assert f"request leaving the report: {host}/pixel.png" in problems
    assert hits == []  # blocked in the browser: not even loopback saw it
    script = "lavis / script_error / script_error [summary.html]: "
    assert f"{script}console.error: chart data missing" in problems
    assert f"{script}exception: TypeError: Cannot read properties of null" in problems
    assert "cosmos: no section 'cosmos_dtd' (shown: cosmos_cifar10)" in problems
    assert "category 'glamm' is not in the report (shown: cosmos, g3m, lavis)" in problems
    # The sound sections are walked like the others and blamed for nothing.
    assert not [p for p in seen.problems if "coco_valid" in p or "cc3m" in p]
    assert not [p for p in seen.problems if "broken_image" in p and "summary.html" in p]

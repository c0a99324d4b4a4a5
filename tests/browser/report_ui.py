"""Walk a Snakemake 9 report in the browser as a user does, and say what is wrong with it.

The report is one HTML file holding a React app (snakemake/report/html_reporter): a menu of
result categories in the left navbar; a category lists its subcategories (one alone is opened
directly, its name shown nowhere, so it is read from the app's state); a subcategory lists its
results in a table whose eye button shows the result beside the navbar: an <img> of its data:
URI, or an <iframe> for HTML. Labelled results with a label of two values (vlprep's "view":
summary / sample images) get a toggle above the table that switches it between the two halves.
`walk` clicks through every category, every subcategory, both sides of its toggle and every
result with the mouse, waits for each to render, and checks every image of every frame
(complete, naturalWidth > 0), the requests that would leave the file (blocked and named by
chromium.Tab) and the errors in the console. The selectors are the pinned Snakemake's.
"""

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.browser.chromium import CdpError, Tab

NAVBAR = "#app nav.h-screen"
MENU = f"{NAVBAR} > div > div.p-3"
BREADCRUMBS = f"{NAVBAR} nav ol"
CONTENT = "#app > div > div.h-screen"
GENERAL_ITEMS = {"Workflow", "Statistics", "About"}
RENDER_TIMEOUT = 30.0

# Every <img> of a document, whether it has finished loading and whether it loaded a picture.
IMAGES_JS = """(() => {
  const images = [...document.images].map(img => ({
    src: (img.currentSrc || img.src).slice(0, 80), complete: img.complete,
    loaded: img.complete && img.naturalWidth > 0}));
  return {ready: document.readyState === 'complete', images};
})()"""


@dataclass
class Result:
    """One result as shown: where, its row's label, what the content pane showed."""

    category: str
    subcategory: str
    label: str
    kind: str  # "img", "html", or "file" (no view: its button downloads it)
    images: int = 0


@dataclass
class Walk:
    """What the walk saw: the sections (category -> subcategories) and results it opened,
    the screenshots it kept and every problem, each naming where it was found."""

    sections: dict[str, list[str]] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _js(value) -> str:
    return json.dumps(value)


def _short(text: str) -> str:
    """`text` with its data: URIs cut (a report's are its whole files, base64)."""
    return re.sub(r"(data:[^,\s]{0,60}),[A-Za-z0-9+/=]{16,}", r"\1,...", text)


def _click(tab: Tab, element: str, what: str) -> None:
    """Click the element the JavaScript expression `element` finds, at its centre, as a user
    does: once it is scrolled into view, has stopped moving (the navbar's width is animated
    between its modes) and is what the pointer would hit there."""
    where = f"""(() => {{
      const el = {element};
      if (!el) return null;
      el.scrollIntoView({{block: 'center'}});
      const box = el.getBoundingClientRect();
      const x = box.x + box.width / 2, y = box.y + box.height / 2;
      const hit = document.elementFromPoint(x, y);
      return [x, y, hit !== null && el.contains(hit)];
    }})()"""
    deadline = time.monotonic() + RENDER_TIMEOUT
    last = None
    while True:
        now = tab.evaluate(where)
        if now is not None and now[2] and now == last:
            tab.click(now[0], now[1])
            return
        if time.monotonic() > deadline:
            raise CdpError(f"{what}: {'not found' if now is None else 'never still and on top'}")
        last = now
        tab.browser.pump(0.05)


def _click_link(tab: Tab, scope: str, text: str, what: str) -> None:
    """Click the link of `scope` whose text is `text`."""
    link = (
        f"[...document.querySelectorAll({_js(scope + ' a')})]"
        f".find(a => a.textContent.trim() === {_js(text)})"
    )
    _click(tab, link, f"link {text!r} in {what}")


def _links(tab: Tab, scope: str) -> list[str]:
    return tab.evaluate(
        f"[...document.querySelectorAll({_js(scope + ' ul > li > a')})]"
        ".map(a => a.textContent.trim())"
    )


def _app_state(tab: Tab) -> dict:
    return tab.evaluate(
        "({mode: app.state.navbarMode, category: app.state.category || null,"
        " subcategory: app.state.subcategory || null, resultPath: app.state.resultPath || null})"
    )


def _frame_images(tab: Tab) -> list[dict]:
    """Every <img> of every frame of the page, once all frames and images have finished
    loading (or RENDER_TIMEOUT has passed: what is still loading then counts as broken)."""
    tab.browser.pump(0.2)  # let a new frame attach and start its loads
    deadline = time.monotonic() + RENDER_TIMEOUT
    while True:
        frames = tab.evaluate_in_frames(IMAGES_JS).values()
        settled = all(f["ready"] and all(i["complete"] for i in f["images"]) for f in frames)
        if settled or time.monotonic() > deadline:
            return [image for frame in frames for image in frame["images"]]
        tab.browser.pump(0.1)


def _show(tab: Tab, row: int) -> tuple[str, str]:
    """Click the eye button of the results table's row `row` and wait until the content pane
    shows it; returns (the row's labels, what the pane shows: "img", "html", or "file" for a
    result that has no view, whose button would download it)."""
    row_js = f"document.querySelectorAll({_js(MENU + ' table tbody tr')})[{row}]"
    label, download = tab.evaluate(f"""(() => {{
      const row = {row_js};
      const cells = [...row.querySelectorAll('td')].slice(0, -1);
      return [cells.map(td => td.textContent.trim()).join(' / '),
              row.querySelector('td:last-child a').hasAttribute('download')];
    }})()""")
    if download:
        return label, "file"
    _click(tab, f"{row_js}.querySelector('td:last-child a')", f"the eye button of {label!r}")
    # Shown when its row is highlighted (the app's resultPath) and the pane shows that result.
    kind = tab.wait_for(
        f"""(() => {{
      const row = document.querySelectorAll({_js(MENU + " table tbody tr")})[{row}];
      if (!row.querySelector('td').className.includes('bg-slate-700')) return null;
      const shown = document.querySelector({_js(CONTENT)}).querySelector('img, iframe');
      if (!shown || shown.getAttribute('src') !== app.state.contentPath) return null;
      return shown.tagName === 'IMG' ? 'img' : 'html';
    }})()""",
        RENDER_TIMEOUT,
        f"result {label!r} to show",
    )
    return label, kind


def _toggle_choices(tab: Tab) -> list[str | None]:
    """The values of the subcategory's toggle (Snakemake makes one of a label with two values,
    each on half of the results, and shows one half at a time); [None] without one."""
    toggle = tab.evaluate(f"""(() => {{
      const field = document.querySelector({_js(MENU + " fieldset")});
      return field && [...field.querySelectorAll('label')].map(l => l.textContent.trim());
    }})()""")
    return toggle or [None]


def _pick(tab: Tab, value: str) -> None:
    """Click the toggle's `value`, as a user switches the table to the other half."""
    label = (
        f"[...document.querySelectorAll({_js(MENU + ' fieldset label')})]"
        f".find(l => l.textContent.trim() === {_js(value)})"
    )
    _click(tab, label, f"toggle {value!r}")
    tab.wait_for(
        f"document.querySelector({_js(MENU + ' fieldset input[value=' + json.dumps(value) + ']')})"
        ".checked",
        RENDER_TIMEOUT,
        f"toggle {value!r}",
    )


def _open_category(tab: Tab, entry: str) -> tuple[str, list[str], bool]:
    """Click the menu's `entry`; returns (the category, its subcategories, whether it lists
    them: a lone subcategory is opened at once and named nowhere but the app's state)."""
    _click_link(tab, MENU, entry, "the report's menu")
    tab.wait_for(
        "['category', 'subcategory'].includes(app.state.navbarMode)",
        RENDER_TIMEOUT,
        f"category {entry!r} to open",
    )
    state = _app_state(tab)
    if state["mode"] == "category":
        return state["category"], _links(tab, MENU), True
    return state["category"], [state["subcategory"]], False


def _open_subcategory(tab: Tab, category: str, subcategory: str) -> None:
    _click_link(tab, MENU, subcategory, f"category {category!r}")
    tab.wait_for(
        f"app.state.navbarMode === 'subcategory' && app.state.subcategory === {_js(subcategory)}"
        f" && document.querySelector({_js(MENU + ' table')}) !== null",
        RENDER_TIMEOUT,
        f"{category} / {subcategory} to open",
    )


def _home(tab: Tab) -> None:
    """Back to the menu by the breadcrumbs' first link (the home icon)."""
    _click(tab, f"document.querySelector({_js(BREADCRUMBS + ' a')})", "the home breadcrumb")
    tab.wait_for("app.state.navbarMode === 'menu'", RENDER_TIMEOUT, "the menu")


def _walk_rows(
    tab: Tab, seen: Walk, where: tuple[str, str, str | None], shots: Path, grid_of: str | None
) -> None:
    """Show each row of the results table now on screen and check what it shows."""
    category, subcategory, choice = where
    rows = tab.evaluate(f"document.querySelectorAll({_js(MENU + ' table tbody tr')}).length")
    for row in range(rows):
        errors = len(tab.errors)
        label, kind = _show(tab, row)
        if choice is not None:
            label = f"{label} [{choice}]"
        place = f"{category} / {subcategory} / {label}"
        images = _frame_images(tab) if kind != "file" else []
        seen.results.append(Result(category, subcategory, label, kind, len(images)))
        seen.problems += [
            f"{place}: image {image['src']}... did not load"
            for image in images
            if not image["loaded"]
        ]
        seen.problems += [f"{place}: {_short(error)}" for error in tab.errors[errors:]]
        if kind == "img" and subcategory == grid_of and len(seen.screenshots) == 1:
            seen.screenshots.append(tab.screenshot(shots / f"report-{subcategory}-grid.png"))


def walk(
    tab: Tab,
    report: Path,
    expected: dict[str, list[str]],
    shots: Path,
    require: tuple[str, ...] = (),
    grid_of: str | None = None,
) -> Walk:
    """Open `report`, click through all of it, and check it against `expected` (category ->
    the subcategories it must list); `require` names the content kinds ("img", "html") every
    expected subcategory must hold. Keeps screenshots in `shots`: the main page, and the
    first image result of subcategory `grid_of` (default: the first expected one)."""
    seen = Walk()
    tab.open(report.resolve().as_uri())
    tab.wait_for(
        f"document.readyState === 'complete'"
        f" && document.querySelectorAll({_js(MENU + ' ul > li > a')}).length > 0",
        RENDER_TIMEOUT,
        "the report's app to render",
    )
    tab.browser.pump(0.5)  # the rule graph's vega view draws after the first render
    seen.screenshots.append(tab.screenshot(shots / "report-main.png"))
    grid_of = grid_of or next((s for subs in expected.values() for s in subs), None)

    # A lone category is offered as "Results" (named only in the breadcrumbs).
    for entry in [text for text in _links(tab, MENU) if text not in GENERAL_ITEMS]:
        category, subcategories, listed = _open_category(tab, entry)
        seen.sections[category] = subcategories
        for subcategory in subcategories:
            if listed:
                _open_subcategory(tab, category, subcategory)
            for choice in _toggle_choices(tab):
                if choice is not None:
                    _pick(tab, choice)
                _walk_rows(tab, seen, (category, subcategory, choice), shots, grid_of)
            if listed:
                _click_link(tab, BREADCRUMBS, category, "the breadcrumbs")
                tab.wait_for("app.state.navbarMode === 'category'", RENDER_TIMEOUT, category)
        _home(tab)

    seen.problems += [f"request leaving the report: {url}" for url in tab.blocked]
    seen.problems += _missing(seen, expected, require)
    # Errors outside any result's view (loading the app, opening a category).
    seen.problems += [f"console: {_short(e)}" for e in tab.errors if not _reported(e, seen)]
    return seen


def _reported(error: str, seen: Walk) -> bool:
    return any(problem.endswith(_short(error)) for problem in seen.problems)


def _missing(seen: Walk, expected: dict[str, list[str]], require: tuple[str, ...]) -> list[str]:
    problems = []
    for category, subcategories in expected.items():
        if category not in seen.sections:
            shown = ", ".join(seen.sections) or "none"
            problems.append(f"category {category!r} is not in the report (shown: {shown})")
            continue
        for subcategory in subcategories:
            if subcategory not in seen.sections[category]:
                shown = ", ".join(seen.sections[category])
                problems.append(f"{category}: no section {subcategory!r} (shown: {shown})")
                continue
            kinds = {
                r.kind
                for r in seen.results
                if (r.category, r.subcategory) == (category, subcategory)
            }
            for kind in require:
                if kind not in kinds:
                    problems.append(f"{category} / {subcategory}: no {kind} result")
    return problems

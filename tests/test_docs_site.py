"""The built docs site works offline: nothing loads from another host, and every formula renders in a real browser."""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from _browser import OFFLINE, chromium, run_browser

ROOT = Path(__file__).resolve().parents[1]
BUILT = ROOT / "build" / "site"  # what `make docs` writes

# A URL that leaves the site: `http://host/...`, `https://...`, protocol-relative `//host/...` (and ws/ftp).
_EXTERNAL = re.compile(r"^\s*(?:(?:https?|wss?|ftp):)?//", re.IGNORECASE)
# `url(...)` and `@import "..."` in CSS (style sheets, <style>, style="" and CSS strings inside JS).
_CSS_URL = re.compile(r"""url\(\s*(?:\\?["'])?([^"')\\\s]+)|@import\s+(?:url\(\s*)?["']?([^"')\s;]+)""", re.IGNORECASE)
# <link rel=...> values that name a document to navigate to, not a resource the page loads.
_NAVIGATION_RELS = {"canonical", "alternate", "prev", "next", "author", "license", "me", "help", "search"}


def _newest_source() -> float:
    sources = [ROOT / "mkdocs.yml", *(p for p in (ROOT / "docs").rglob("*") if p.is_file())]
    return max(p.stat().st_mtime for p in sources)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build/site when it is newer than mkdocs.yml and every docs/ file, else a fresh strict build."""
    index = BUILT / "index.html"
    if index.is_file() and index.stat().st_mtime > _newest_source():
        return BUILT
    venv_mkdocs = ROOT / ".venv" / "bin" / "mkdocs"
    mkdocs = str(venv_mkdocs) if venv_mkdocs.exists() else shutil.which("mkdocs")
    if mkdocs is None:
        pytest.fail("no mkdocs: run `make .venv/.installed` (the dev extra installs it)")
    out = tmp_path_factory.mktemp("docs") / "site"
    done = subprocess.run(
        [mkdocs, "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return out


# ----- no resource from another host, read from the files -----
class _Resources(HTMLParser):
    """Every URL an HTML page loads as a resource: scripts, style sheets, fonts, images, frames, CSS urls."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        rels = set(values.get("rel", "").lower().split())
        if tag == "link" and not rels & _NAVIGATION_RELS:
            self.urls.append(values.get("href", ""))
        if tag in {"script", "img", "iframe", "frame", "source", "audio", "video", "track", "embed", "input"}:
            self.urls.append(values.get("src", ""))
        if tag in {"img", "source"} and values.get("srcset"):
            self.urls += [candidate.split()[0] for candidate in values["srcset"].split(",") if candidate.strip()]
        if tag == "object":
            self.urls.append(values.get("data", ""))
        if tag in {"video", "image", "use"}:
            self.urls += [values.get("poster", ""), values.get("href", ""), values.get("xlink:href", "")]
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            self.urls.append(values.get("content", "").partition("url=")[2])
        self.urls += _css_urls(values.get("style", ""))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls += _css_urls(data)


def _css_urls(text: str) -> list[str]:
    return [first or second for first, second in _CSS_URL.findall(text)]


def _external(urls: list[str]) -> list[str]:
    return sorted({url for url in urls if _EXTERNAL.match(html.unescape(url))})


def test_no_page_loads_anything_from_another_host(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20 and (site / "methods" / "weighting" / "index.html") in pages
    offenders: dict[str, list[str]] = {}  # URL -> the files that load it
    for page in pages:
        parser = _Resources()
        parser.feed(page.read_text(encoding="utf-8"))
        for url in _external(parser.urls):
            offenders.setdefault(url, []).append(page.relative_to(site).as_posix())
    # Style sheets, and CSS that scripts inject (MathJax's @font-face rules, say): fonts and imports.
    for sheet in sorted([*site.rglob("*.css"), *site.rglob("*.js")]):
        for url in _external(_css_urls(sheet.read_text(encoding="utf-8", errors="replace"))):
            offenders.setdefault(url, []).append(sheet.relative_to(site).as_posix())
    summary = {url: f"{len(files)} files, e.g. {', '.join(files[:3])}" for url, files in offenders.items()}
    assert not offenders, "resources from other hosts (the site must work offline):\n" + json.dumps(summary, indent=1)


def test_the_external_check_sees_the_usual_suspects() -> None:
    parser = _Resources()
    parser.feed(
        '<link rel="preconnect" href="https://fonts.gstatic.com"><link rel="canonical" href="https://x.org/">'
        '<script src="//cdn.example/m.js"></script><style>@import "https://a.example/s.css";</style>'
        '<div style="background: url(&quot;http://b.example/i.png&quot;)"></div><img src="i.png">'
    )
    assert _external(parser.urls) == [
        "//cdn.example/m.js",
        "http://b.example/i.png",
        "https://a.example/s.css",
        "https://fonts.gstatic.com",
    ]
    assert _css_urls("@font-face{src:url(fonts/a.woff)} x{b:url('https://c.example/f.woff2')}") == [
        "fonts/a.woff",
        "https://c.example/f.woff2",
    ]


# ----- a real headless browser, with every other host unreachable -----
# Injected first in <head>: records script errors, rejected promises, console.error calls and resources that
# failed to load, then (re)writes what it found into <pre id="__check"> until the page is dumped.
_PROBE = """<script>
window.__problems = [];
window.addEventListener("error", e => {
  const target = e.target && e.target !== window ? (e.target.src || e.target.href || e.target.tagName) : null;
  window.__problems.push(target ? "failed to load: " + target : "error: " + e.message);
}, true);
window.addEventListener("unhandledrejection", e => {
  window.__problems.push("unhandled rejection: " + (e.reason && (e.reason.stack || e.reason.message) || e.reason));
});
const __error = console.error;
console.error = (...args) => { window.__problems.push("console.error: " + args.join(" ")); __error(...args); };
function __report() {
  const formulas = Array.from(document.querySelectorAll(".arithmatex"));
  const rendered = f => f.querySelector("mjx-container, math, .katex, svg") !== null;
  const failed = f => f.querySelector("mjx-merror, merror, .katex-error, [data-mjx-error]") !== null;
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: n => n.parentElement.closest("code, pre, script, style, mjx-assistive-mml, #__check")
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
  });
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const latex = /\\\\[()\\[\\]]|\\\\(frac|sum|begin|text|left|mathbf)\\b|\\$\\$/;
    if (latex.test(n.data)) raw.push(n.data.trim().slice(0, 120));
  }
  const foreign = performance.getEntriesByType("resource").map(r => r.name)
    .filter(u => !u.startsWith(location.origin) && !u.startsWith("data:") && !u.startsWith("blob:"));
  let out = document.getElementById("__check");
  if (!out) { out = document.createElement("pre"); out.id = "__check"; document.body.appendChild(out); }
  out.textContent = JSON.stringify({
    formulas: formulas.length,
    unrendered: formulas.filter(f => !rendered(f)).map(f => f.textContent.trim().slice(0, 120)),
    errors: formulas.filter(failed).map(f => f.textContent.trim().slice(0, 120)),
    raw: raw, foreign: foreign, problems: window.__problems,
  });
}
window.addEventListener("load", () => { __report(); setInterval(__report, 200); });
</script>"""


class _Handler(SimpleHTTPRequestHandler):
    """Serves the site with the probe injected into every page; records what was not found."""

    missing: list[str]

    def send_head(self) -> Any:
        url = self.path.split("?", 1)[0].split("#", 1)[0]
        path = Path(self.translate_path(url))
        page = path / "index.html" if url.endswith("/") else path
        if page.suffix == ".html" and page.is_file():
            body = page.read_text(encoding="utf-8").replace("<head>", "<head>" + _PROBE, 1).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)
        if not path.exists():
            self.missing.append(url)
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: a missing file is recorded above


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[tuple[str, list[str]]]:
    missing: list[str] = []
    handler = type("Handler", (_Handler,), {"missing": missing})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", missing
    finally:
        server.shutdown()
        server.server_close()


def _pages_to_open(site: Path) -> dict[str, int]:
    """The home page, the methods' pages, and every page with a formula; with their formulas' count."""
    counts = {
        page.parent.relative_to(site).as_posix() + "/": page.read_text(encoding="utf-8").count('class="arithmatex"')
        for page in site.rglob("index.html")
    }
    counts[""] = counts.pop("./")
    wanted = {"", "methods/weighting/", "methods/aggregation/"}
    return {page: count for page, count in sorted(counts.items()) if count or page in wanted}


def test_pages_with_formulas_render_in_a_headless_browser(
    site: Path, served: tuple[str, list[str]], tmp_path: Path
) -> None:
    binary = chromium()
    base, missing = served
    pages = _pages_to_open(site)
    assert {"", "methods/weighting/", "concepts/", "analysis/", "methods/adversarial/"} <= set(pages)
    assert sum(pages.values()) >= 7
    results: dict[str, dict[str, Any]] = {}
    for page in pages:
        profile = tmp_path / "profile"
        done = run_browser(binary, profile, OFFLINE, "--virtual-time-budget=8000", "--dump-dom", f"{base}/{page}")
        match = re.search(r'<pre id="__check">(.*?)</pre>', done.stdout, re.DOTALL)
        assert match, f"{page or 'home'}: no result from the page; chromium said: {done.stderr[-2000:]}"
        results[page] = json.loads(html.unescape(match.group(1)))
    assert {page: result["formulas"] for page, result in results.items()} == pages
    checks = ("problems", "unrendered", "errors", "raw", "foreign")
    bad = {
        page or "home": found
        for page, result in results.items()
        if (found := {check: result[check] for check in checks if result[check]})
    }
    assert not bad, "pages that fail offline:\n" + json.dumps(bad, indent=1)
    assert missing == [], f"the pages asked for files the site does not have: {missing}"

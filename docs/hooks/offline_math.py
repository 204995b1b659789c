"""MkDocs hook: serve MathJax from the site itself, so the formulas render with no network.

MathJax 3 comes from the pinned ``django-static-mathjax`` package (a plain copy of MathJax's ``es5``
build; no Django needed): its files are added to the build from the installed package, never
committed. mkdocs.yml loads ``javascripts/mathjax/tex-mml-chtml.js`` after ``javascripts/mathjax.js``
(the settings); MathJax finds its fonts and extensions next to that script.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

DESTINATION = "javascripts/mathjax"  # in the site; mkdocs.yml's extra_javascript names the script in it

# What the TeX-to-HTML build needs at run time: the script, its fonts, the TeX extensions its
# autoloader fetches for macros outside the core set, and the accessibility parts (with English
# speech rules) that its right-click menu loads on demand. The rest of the package (other builds,
# SVG output, other languages, about 20 MB) stays out of the site.
WANTED = (
    "tex-mml-chtml.js",
    "output/chtml/fonts/woff-v2",
    "input/tex/extensions",
    "a11y",
    "ui",
    "sre/mathmaps/base.json",
    "sre/mathmaps/en.json",
)


def mathjax_root() -> Path:
    """The ``es5`` folder of the installed MathJax."""
    spec = importlib.util.find_spec("mathjax")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        root = Path(location) / "static" / "mathjax" / "es5"
        if (root / "tex-mml-chtml.js").is_file():
            return root
    raise PluginError(
        "MathJax not found: the docs need the 'django-static-mathjax' package of the dev extra "
        "(run `make .venv/.installed`)"
    )


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    root = mathjax_root()
    for wanted in WANTED:
        path = root / wanted
        for source in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if source.is_file():
                uri = f"{DESTINATION}/{source.relative_to(root).as_posix()}"
                files.append(File.generated(config, uri, abs_src_path=str(source)))
    return files

// MathJax settings for pymdownx.arithmatex (generic mode). MathJax itself is served from this site
// (javascripts/mathjax/, copied from the pinned django-static-mathjax package by docs/hooks/offline_math.py),
// so formulas render offline.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
    packages: { "[-]": ["noundefined"] }, // an unknown macro is an error (below), not quietly red text
    formatError(jax, error) {
      console.error(`MathJax: TeX error in "${jax.latex}": ${error.message}`); // tests/test_docs_site.py looks
      return jax.formatError(error);
    },
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
  startup: {
    typeset: false, // typeset below, once per page (and again after Material's instant navigation)
  },
};

document$.subscribe(() => {
  MathJax.startup.promise.then(() => {
    MathJax.typesetClear();
    MathJax.texReset();
    return MathJax.typesetPromise();
  });
});

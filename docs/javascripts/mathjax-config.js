// MathJax 3 settings for pymdownx.arithmatex in generic mode (\( \) inline, \[ \] display).
// Must load before the vendored tex-mml-chtml.js (mkdocs.yml lists it first).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex"
  }
};

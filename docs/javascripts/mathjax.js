// MathJax settings for pymdownx.arithmatex (generic mode), as the Material docs recommend.
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true, processEnvironments: true },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex" },
};
document$.subscribe(() => { if (window.MathJax.typesetPromise) { MathJax.typesetPromise(); } });

// MathJax settings for pymdownx.arithmatex (generic mode), as the Material docs recommend.
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true, processEnvironments: true },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex" },
};

// Only a page with equations loads MathJax (1.1 MB), from the site's own copy (no CDN): the other
// pages stay light on a phone.
if (document.querySelector(".arithmatex")) {
  const script = document.createElement("script");
  script.src = new URL("../assets/mathjax/tex-chtml.js", document.currentScript.src).href;
  script.async = true;
  document.head.appendChild(script);
}

// The language switcher keeps the reader's place. Heading ids come from the headings' words, so
// they differ between languages; the place travels as the heading's position instead: "#@<n>".
const HEADINGS = "article :is(h1, h2, h3, h4, h5, h6)[id]";

function currentHeading(headings) {
  const id = decodeURIComponent(location.hash.slice(1));
  const named = id && document.getElementById(id);
  if (named && headings.includes(named)) return named;
  // No anchor: the last heading that has scrolled past the top of the window.
  return headings.filter((h) => h.getBoundingClientRect().top <= 80).pop() || null;
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[hreflang]");
  if (!link) return;
  const headings = [...document.querySelectorAll(HEADINGS)];
  const place = headings.indexOf(currentHeading(headings));
  if (place <= 0) return;
  // Material's own handler rebuilds the address without the anchor: go there ourselves.
  event.preventDefault();
  event.stopPropagation();
  location.href = link.href.split("#")[0] + "#@" + place;
}, true);

if (location.hash.startsWith("#@")) {
  const heading = document.querySelectorAll(HEADINGS)[Number(location.hash.slice(2))];
  if (heading) {
    history.replaceState(null, "", "#" + heading.id);
    heading.scrollIntoView();
    // What a page draws after loading (the Explorer's results, late images) pushes the heading down:
    // follow it until the reader scrolls, clicks or types, or for 20 s.
    const follow = new ResizeObserver(() => heading.scrollIntoView());
    follow.observe(document.querySelector("article") || document.body);
    const stop = () => follow.disconnect();
    for (const type of ["wheel", "touchstart", "keydown", "mousedown"]) {
      addEventListener(type, stop, { once: true, passive: true });
    }
    setTimeout(stop, 20000);
  }
}

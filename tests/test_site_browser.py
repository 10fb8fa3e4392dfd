"""The built site in a real browser: Debian's Chromium, headless, driven by Playwright.

With every request to another host refused (a reader offline or behind a firewall), on every page
of both languages: it paints within 2 s, every equation is typeset, every image loads, no other host
is asked, and a 390 px phone never scrolls sideways. The language switcher leads to the same page
and keeps the section; search lists pages of the page's language; figures open full size. The
weight and first paint of each page are printed as a table at the end.

`SE_TEST_SITE=<folder>` tests a site built already (`SE_RUN=paper mkdocs build --strict -d <folder>`)
instead of the smoke workflow's (about 2 minutes to build).
"""

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

PAGES = ["", "concepts/", "method/", "results/", "explore/", "performance/", "faq/", "reproduce/"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a sandboxed machine without network, as Chromium's own headless tests use them.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site_dir(request):
    """The smoke workflow's site; SE_TEST_SITE=<folder> tests one built already (`mkdocs build -d <folder>`)."""
    if os.environ.get("SE_TEST_SITE"):
        return Path(os.environ["SE_TEST_SITE"]).resolve()
    repo, _ = request.getfixturevalue("smoke_repo")
    return repo / "site" / "smoke"


@pytest.fixture(scope="module")
def site_url(site_dir):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


@pytest.fixture(scope="module")
def page():
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # Offline, as for a reader behind a firewall: every request to another host is refused and
        # kept, so a test can say which host a page tried to reach.
        context = browser.new_context()
        elsewhere = []

        def refuse(route):
            elsewhere.append(route.request.url)
            route.abort()

        context.route(lambda url: not url.startswith("http://127.0.0.1"), refuse)
        page = context.new_page()
        page.attempted_elsewhere = elsewhere
        yield page
        browser.close()


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["", "en/"])
@pytest.mark.parametrize("path", PAGES)
def test_page_loads_with_all_images(page, site_url, lang, path):
    response = page.goto(site_url + lang + path)
    assert response.status == 200
    page.wait_for_load_state("load")
    images = page.eval_on_selector_all("article img", "els => els.map(e => [e.src, e.complete, e.naturalWidth])")
    if path in ("", "concepts/", "results/"):
        assert images, "this page shows figures"
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, broken
    assert page.locator("article h1").count() == 1


@pytest.mark.slow
@pytest.mark.parametrize("path", PAGES)
def test_language_switcher_leads_to_the_same_page(page, site_url, path):
    page.goto(site_url + path)
    page.locator('a[hreflang="en"]').first.evaluate("a => a.click()")  # the menu item, without hovering
    page.wait_for_url(site_url + "en/" + path)
    page.locator('a[hreflang="zh"]').first.evaluate("a => a.click()")
    page.wait_for_url(site_url + path)


@pytest.mark.slow
@pytest.mark.parametrize("lang, query, expected", [("", "注意力", "注意力"), ("en/", "excitation", "xcitation"),
                                                   ("", "Grad-CAM", "Grad-CAM"), ("en/", "Grad-CAM", "Grad-CAM")])
def test_search_finds_words_in_the_page_language_only(page, site_url, lang, query, expected):
    page.goto(site_url + lang)
    page.wait_for_load_state("networkidle")  # the search worker has loaded its index
    page.locator(".md-search__input").first.click()
    page.locator(".md-search__input").fill(query)
    page.keyboard.press("End")  # a key event makes Material run the query
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=15_000)
    assert expected in page.locator(".md-search-result").inner_text()
    links = page.eval_on_selector_all(".md-search-result__item > a", "els => els.map(e => e.href)")
    english = [link.startswith(site_url + "en/") for link in links]
    assert links and all(english) if lang else not any(english), links


@pytest.fixture(scope="module")
def phone(page):
    phone = page.context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    yield phone
    phone.close()


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["", "en/"])
@pytest.mark.parametrize("path", PAGES)
def test_no_page_is_wider_than_a_phone(phone, site_url, lang, path):
    """Wide tables and equations scroll inside their own box; the page itself never scrolls sideways."""
    phone.goto(site_url + lang + path)
    phone.wait_for_load_state("load")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["", "en/"])
@pytest.mark.parametrize("path", ["", "results/", "performance/"])
def test_tables_fit_a_desktop_column(page, site_url, lang, path):
    """At 1280 px no column of a results table hides behind its box's scroll bar (the home page's
    metrics table lost its last column before docs/stylesheets/extra.css)."""
    assert page.viewport_size["width"] == 1280
    page.goto(site_url + lang + path)
    hidden = page.eval_on_selector_all(".md-typeset__scrollwrap", "els => els.filter(e => e.scrollWidth > "
                                       "e.clientWidth).map(e => e.querySelector('th')?.textContent)")
    assert not hidden, f"tables wider than the column: {hidden}"


@pytest.mark.slow
def test_a_figure_opens_full_size(page, site_url):
    page.goto(site_url + "en/results/")
    figure = page.locator("article a.glightbox img").first
    figure.click()
    page.locator(".glightbox-container .gslide-image img").first.wait_for(timeout=5_000)


@pytest.mark.slow
@pytest.mark.parametrize("start, other, heading", [
    ("en/concepts/#definition", "zh", "定义"),
    ("concepts/#definition", "en", "Definition"),
    ("en/faq/#relatives", "zh", "近亲"),
])
def test_the_language_switcher_keeps_the_place(page, site_url, start, other, heading):
    page.goto(site_url + start)
    page.locator(f'a[hreflang="{other}"]').first.evaluate("a => a.click()")
    page.wait_for_function("() => location.hash && !location.hash.startsWith('#@')")
    shown = page.evaluate("document.getElementById(decodeURIComponent(location.hash.slice(1))).textContent")
    assert heading in shown


@pytest.mark.slow
@pytest.mark.parametrize("lang, suffix", [("", "zh"), ("en/", "en")])
def test_notebook_is_rendered_with_outputs_and_downloadable(page, site_url, lang, suffix):
    page.goto(site_url + lang + "explore/")
    assert page.locator(".jp-Cell").count() >= 5  # rendered by mkdocs-jupyter, not raw JSON
    assert page.locator(".jp-OutputArea-output img").count() >= 1  # the executed plot
    link = page.locator(f'a[href$="explore.{suffix}.ipynb"]').first
    response = page.request.get(link.evaluate("a => a.href"))
    assert response.ok and '"cells"' in response.text()


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["", "en/"])
@pytest.mark.parametrize("path", PAGES)
def test_every_table_of_contents_link_leads_to_a_heading(page, site_url, lang, path):
    """The zh notebook's headings had id="" while its contents linked to "#_1": links that led nowhere."""
    page.goto(site_url + lang + path)
    dead = page.evaluate("""() => [...document.querySelectorAll('nav.md-nav--secondary a.md-nav__link')]
        .map(a => a.getAttribute('href')).filter(h => h && h.startsWith('#'))
        .filter(h => h === '#' || !document.getElementById(decodeURIComponent(h.slice(1))))""")
    assert not dead, f"contents links to no heading: {dead}"
    empty = page.evaluate("[...document.querySelectorAll('article :is(h1,h2,h3,h4)')].filter(h => h.id === '').length")
    assert empty == 0, "headings without an id"


@pytest.mark.slow
def test_faq_asks_at_least_36_questions_the_same_in_both_languages(page, site_url):
    counts = {}
    for lang in ("", "en/"):
        page.goto(site_url + lang + "faq/")
        questions = page.locator("article details.question")
        counts[lang or "zh/"] = questions.count()
        titles = questions.locator("summary").all_inner_texts()
        assert all(title.strip() for title in titles), "a question without a visible title"
        # Each question opens on a click and shows an answer.
        last = questions.last
        last.locator("summary").click()
        assert last.evaluate("d => d.open") and last.inner_text().strip() != titles[-1].strip()
    assert min(counts.values()) >= 36, counts
    assert counts["zh/"] == counts["en/"], counts


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["", "en/"])
def test_concepts_page_shows_code(page, site_url, lang):
    """The lesson is mostly code: the Concepts page shows some, highlighted and readable, not only prose."""
    page.goto(site_url + lang + "concepts/")
    blocks = page.locator("article .highlight pre code")
    python = [b for b in blocks.all() if any(w in b.inner_text() for w in ("def ", "import "))]
    assert python, "no Python code block on the Concepts page"
    for block in python:
        assert block.is_visible() and block.locator("span").count() > 0, "code is not highlighted"
        assert len(block.inner_text().strip().splitlines()) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("lang, code", [("", "zh"), ("en/", "en")])
def test_concepts_page_shows_the_four_diagrams_in_its_language(page, site_url, lang, code):
    """The SE block, its place in this CNN and in a ResNet block, after conv vs after pool: drawn, loaded, translated."""
    page.goto(site_url + lang + "concepts/")
    page.wait_for_load_state("load")
    shown = page.eval_on_selector_all(
        "article img[src$='.svg']", "els => els.map(e => [e.getAttribute('src'), e.alt, e.naturalWidth, e.clientWidth])")
    names = [src.rsplit("/", 1)[1] for src, *_ in shown]
    assert names == ["se_block.svg", "se_in_cnn.svg", "se_resnet.svg", "se_placement.svg"], names
    for src, alt, natural, width in shown:
        assert f"/{code}/" in src and natural > 0 and width > 0, src
        assert bool(re.search(r"[\u4e00-\u9fff]", alt)) == (code == "zh"), alt


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["", "en/"])
def test_concepts_page_shows_every_module_from_src(page, site_url, lang):
    """The SE block, the conv block, Grad-CAM and each zoo module, as included from src/ (no marker shown)."""
    page.goto(site_url + lang + "concepts/")
    code = "\n".join(page.locator("article .highlight pre code").all_inner_texts())
    for name in ("class SEBlock", "class ConvBlock", "def grad_cam", "class ECABlock", "def eca_kernel_size",
                 "class ChannelGate", "class SpatialAttention", "class CBAM"):
        assert name in code, f"{name} is not on the Concepts page"
    assert "--8<--" not in page.locator("article").inner_text()


# What a reader would see if an equation did not typeset: its TeX source as text.
RAW_TEX = ["$$", "\\frac", "\\sigma", "\\sum", "\\mathbb"]


@pytest.fixture(scope="module")
def weights(request):
    """Each page's first paint and weight, printed as one table after the tests (no -s needed)."""
    rows = []
    yield rows
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if not rows or terminal is None or capture is None:
        return
    with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
        terminal.write_line("")
        terminal.write_line("site weight and first paint (other hosts refused; bytes as served, uncompressed):")
        for row in rows:
            terminal.write_line(row)


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["", "en/"])
@pytest.mark.parametrize("path", PAGES)
def test_page_paints_fast_typesets_every_equation_and_asks_no_other_host(page, site_url, weights, lang, path):
    page.attempted_elsewhere.clear()
    page.goto(site_url + lang + path)
    page.wait_for_load_state("load")
    # The paint entry can be recorded just after the load event: wait for it rather than read -1.
    page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0", timeout=10_000)
    paint_ms = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime")
    assert 0 <= paint_ms < 2000, f"first paint after {paint_ms:.0f} ms"
    equations = page.locator("article .arithmatex").count()
    if path == "concepts/":
        assert equations >= 3, "the SE block's equations are on this page"
    # Typeset when the site was built (hooks/maths.py): each equation is KaTeX's markup, no error, and
    # the page's KaTeX stylesheet applies (the MathML copy for screen readers is hidden, not shown twice).
    typeset = page.evaluate("""() => [...document.querySelectorAll('article .arithmatex')].filter(e =>
        e.querySelector('.katex-html') && !e.querySelector('.katex-error')
        && getComputedStyle(e.querySelector('.katex-mathml')).position === 'absolute').length""")
    assert typeset == equations, f"{equations - typeset} of {equations} equations not typeset"
    if equations:
        assert page.evaluate("document.fonts.ready.then(() => document.fonts.check('16px KaTeX_Main'))")
    text = page.locator("article").inner_text()
    assert not [tex for tex in RAW_TEX if tex in text], "raw TeX is visible"
    assert page.attempted_elsewhere == [], f"asked other hosts: {sorted(set(page.attempted_elsewhere))}"
    # Bytes per page with every asset, as a first visit loads them (a cached file still counts).
    sizes = page.evaluate("[performance.getEntriesByType('navigation')[0].encodedBodySize, "
                          "...performance.getEntriesByType('resource').map(r => r.encodedBodySize)]")
    largest = page.evaluate("performance.getEntriesByType('resource').sort((a, b) => b.encodedBodySize - "
                            "a.encodedBodySize).slice(0, 3).map(r => [r.name.split('/').pop(), r.encodedBodySize])")
    row = (f"{lang or 'zh/'}{path:<13} first paint {paint_ms:5.0f} ms, {sum(sizes) / 1024:5.0f} KiB in "
           f"{len(sizes):2d} files, {equations} equations; largest: "
           + ", ".join(f"{name} {size / 1024:.0f} KiB" for name, size in largest))
    weights.append(row)
    print(row)

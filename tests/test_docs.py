"""The docs site (MkDocs, tools/docsite.py) as a reader sees it: build it once, serve it on 127.0.0.1, browse it.

Every notebook of nbs/sidebar.yml has a page, in the sidebar's order; every module has an API page; links between
pages lead to pages and anchors that exist; no page shows Quarto/nbdev markup; exercise solutions are folded; math
is MathML; every image loads. In headless Chromium: search finds an API name and a word of the prose, code never
sticks out or gets cut off (on a laptop and on a phone), copy buttons copy, dark mode switches and stays.
Screenshots go to screenshots/.
"""
import functools, http.server, json, re, subprocess, sys, threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin

import pytest

TOP = Path(__file__).resolve().parent.parent
SHOTS = TOP/'screenshots'
sys.path.insert(0, str(TOP/'tools'))
import docsite  # noqa: E402

# what a reader must never see: Quarto cell options, Quarto link attributes, YAML front matter, nbdev keys
RAW = [re.compile(p) for p in (r'(?m)^\s*#\| ?\w', r'\{target=', r'---\s*\ntitle:', r'\boutput-file:', r'has_sd',
                               r'\{\.callout')]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    "The site, built once: (its folder, the build's completed process)."
    out = tmp_path_factory.mktemp('site')/'_docs'
    r = subprocess.run([sys.executable, str(TOP/'tools/docsite.py'), '--out', str(out)],
                       cwd=TOP, capture_output=True, text=True, timeout=900)
    print(r.stdout, r.stderr[-3000:])
    assert (out/'index.html').exists(), f'docsite built no site:\n{r.stdout}\n{r.stderr[-5000:]}'
    return out, r


@pytest.fixture(scope='module')
def site(built):
    "The built site served on 127.0.0.1: (its folder, its address)."
    out, _ = built
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f'http://127.0.0.1:{server.server_address[1]}/'
    server.shutdown(); server.server_close()


def sources():
    "Built page (data.ipynb, api/data.md) -> its notebook in nbs/, as the last build staged them."
    return json.loads((docsite.SITE_SRC/'.sources.json').read_text(encoding='utf-8'))


def pages(out):
    "Every page of the site but 404.html, as paths relative to `out`."
    return sorted(str(p.relative_to(out)) for p in out.rglob('*.html') if p.name != '404.html')


def new_page(browser, base, width=1280, height=900, **context):
    page = browser.new_context(viewport={'width': width, 'height': height}, **context).new_page()
    # the site must work offline: anything not from our server (e.g. GitHub's API for the repo's stars) is refused
    page.route('**/*', lambda route: route.continue_() if route.request.url.startswith(base) else route.abort())
    return page


class _Page(HTMLParser):
    "A page's ids, links, images and text (without scripts and styles)."
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.images, self.text, self._skip = set(), [], [], [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if 'id' in a: self.ids.add(a['id'])
        if tag == 'a' and a.get('href'): self.links.append(a['href'])
        if tag == 'img' and a.get('src'): self.images.append(a['src'])
        self._skip += tag in ('script', 'style')

    def handle_endtag(self, tag): self._skip -= tag in ('script', 'style')
    def handle_data(self, data):
        if not self._skip: self.text.append(data)


def parsed(path: Path) -> _Page:
    p = _Page(); p.feed(path.read_text(encoding='utf-8')); p.close()
    return p


# --- the pages ---------------------------------------------------------------------------------------------

def test_every_notebook_builds(built):
    "nbdev processes every notebook (a notebook it cannot process gets no page, and the build says which)."
    _, r = built
    failed = [l for l in r.stderr.splitlines() if 'could not process' in l]
    assert r.returncode == 0 and not failed, '\n'.join(failed) or r.stderr[-3000:]


def test_every_sidebar_notebook_has_a_page_in_order(site):
    out, _ = site
    listed = [name for _, name in docsite.sidebar()]
    staged = sources()
    page_of = {nb: f for f, nb in staged.items() if f.endswith('.ipynb')}
    assert set(listed) <= set(page_of), f'notebooks of sidebar.yml without a page: {set(listed) - set(page_of)}'
    expected = [Path(page_of[nb]).with_suffix('.html').name for nb in listed]
    assert all((out/p).exists() for p in expected), [p for p in expected if not (out/p).exists()]
    # the sidebar of every page lists them in sidebar.yml's order, then the API pages
    index = (out/'index.html').read_text(encoding='utf-8')
    nav = [h for h in re.findall(r'<a href="([^"]+)" class="md-nav__link', index) if not h.startswith('#')]
    nav = [urljoin('index.html', h).split('#')[0] for h in nav]
    nav = [n if n != './' else 'index.html' for n in dict.fromkeys(nav)]
    assert [n for n in nav if not n.startswith('api/')] == expected
    modules = docsite.modules(TOP/'llmplay')
    assert [n for n in nav if n.startswith('api/')] == [f'api/{m}.html' for m in modules]


def test_api_pages(site):
    "A page per module, with an entry (a heading with an id, the signature, the docstring) per public name."
    out, _ = site
    for m in docsite.modules(TOP/'llmplay'):
        html = (out/f'api/{m}.html').read_text(encoding='utf-8')
        assert re.search(rf'id="llmplay\.{m}\.\w+"', html), f'api/{m}.html documents nothing'
    html = (out/'api/data.html').read_text(encoding='utf-8')
    entry = html.split('id="llmplay.data.clean_wikitext"', 1)[1][:3000]
    assert 'Readable plain text' in entry and 'wikitext' in re.sub(r'<[^>]+>', '', entry)


def test_no_quarto_markup_and_links_lead_somewhere(site):
    "No page shows Quarto/nbdev markup; every link to a page of the site leads to a page and an id that exist."
    out, _ = site
    parsedpages = {p: parsed(out/p) for p in pages(out)}
    problems = []
    for name, p in parsedpages.items():
        text = ''.join(p.text)
        problems += [f'{name}: shows raw {rx.pattern!r}' for rx in RAW if rx.search(text)]
        for href in p.links:
            if re.match(r'^[a-z][a-z0-9+.-]*:', href) or href.startswith('//'): continue  # external
            target, frag = urldefrag(urljoin(name, href))
            target = unquote(target.split('?')[0]) or name
            if target.endswith('/'): target += 'index.html'
            if not (out/target).exists(): problems.append(f'{name}: link to {href}: no such page'); continue
            ids = parsedpages[target].ids if target in parsedpages else set()
            if frag and target.endswith('.html') and frag not in ids:
                problems.append(f'{name}: link to {href}: no id {frag!r} there')
    assert not problems, '\n'.join(problems[:40])
    # nbdev's links to the API entries (to the hosted site, rewritten) are among them
    assert any(h.startswith('data.html#') for p in parsedpages.values() for h in p.links)


def test_solutions_are_folded(site):
    "Each exercise solution (a cell hidden in the notebook) is a closed <details> with its code and outputs."
    out, _ = site
    staged = sources()
    for page, nb in staged.items():
        if not page.endswith('.ipynb'): continue
        cells = json.loads((TOP/'nbs'/nb).read_text(encoding='utf-8'))['cells']
        hidden = [c for c in cells if (c.get('metadata', {}).get('jupyter') or {}).get('source_hidden')]
        html = (out/Path(page).with_suffix('.html')).read_text(encoding='utf-8')
        folded = re.findall(r'<details class="solution"( open)?>', html)
        assert len(folded) == len(hidden), f'{page}: {len(hidden)} solutions in {nb}, {len(folded)} folded'
        assert not any(folded), f'{page}: a solution is open'
    assert any('<details class="solution">' in (out/p).read_text(encoding='utf-8') for p in pages(out))


def test_math_is_mathml(site):
    "$...$ in the prose is MathML (drawn with no script or network), never raw TeX."
    out, _ = site
    with_math = [p for p in pages(out) if '<math' in (out/p).read_text(encoding='utf-8')]
    assert with_math, 'no page has math'
    for p in with_math:
        text = ''.join(parsed(out/p).text)
        assert not re.search(r'\$\\(?:frac|sqrt|log|sum)\b', text), f'{p}: raw TeX'


# --- in the browser --------------------------------------------------------------------------------------------

def test_images_load(site, browser):
    "Every picture of every page loads: the screenshots in nbs/images, plots in the outputs."
    out, base = site
    page, problems, shown = new_page(browser, base), [], 0
    for name in pages(out):
        page.goto(base + name, wait_until='load')
        imgs = page.eval_on_selector_all('img', 'es => es.map(e => [e.complete && e.naturalWidth > 0, e.src])')
        problems += [f'{name}: {src[:60]}' for ok, src in imgs if not ok]
        shown += len(imgs)
    assert not problems, 'images that do not load:\n' + '\n'.join(problems)
    referenced = {m for p in pages(out) for m in parsed(out/p).images if m.startswith('images/')}
    assert referenced and all((out/m).exists() for m in referenced), referenced
    print(f'{shown} images, all loaded')


def test_solution_opens(site, browser):
    "A folded solution shows only its summary until the reader opens it; then its code and outputs."
    out, base = site
    name = next(p for p in pages(out) if '<details class="solution">' in (out/p).read_text(encoding='utf-8'))
    page = new_page(browser, base, width=390, height=844)
    page.goto(base + name, wait_until='load')
    solution = page.locator('details.solution').first
    solution.scroll_into_view_if_needed()
    assert solution.locator('summary').is_visible() and not solution.locator('pre').first.is_visible()
    solution.locator('summary').click()
    solution.locator('pre').first.wait_for(state='visible')
    assert solution.locator('pre').first.inner_text().strip()  # the solution's code
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS/'docs_solution_390.png'))


def test_search(site, browser):
    "The search box finds an API name's entry, and a word that one section of the prose holds finds that section."
    out, base = site
    index = json.loads((out/'search/search_index.json').read_text(encoding='utf-8'))['docs']
    page = new_page(browser, base)
    page.goto(base + 'index.html', wait_until='load')
    hits = page.locator('.md-search-result__item > a, .md-search-result__item details a, .md-search-result__link')

    def search(q):
        box = page.locator('input.md-search__input')
        if not box.is_visible(): page.keyboard.press('/')
        box.fill('')
        box.type(q)
        page.locator('.md-search-result__meta').filter(has_text=re.compile(r'\d+ matching')).wait_for(timeout=20000)
        return [urldefrag(h)[0].split('?')[0] + ('#' + urldefrag(h)[1] if urldefrag(h)[1] else '')
                for h in hits.evaluate_all('es => es.map(e => e.href)')]

    found = [h[len(base):] for h in search('clean_wikitext')]
    assert 'data.html#clean_wikitext' in found and 'api/data.html#llmplay.data.clean_wikitext' in found, found
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS/'docs_search.png'))
    # a word of 9+ letters that only one section of a course page holds (its heading excluded)
    titles = ' '.join(d['title'] for d in index).lower()
    words = {}
    for d in index:
        for w in set(re.findall(r'\b[a-z]{9,}\b', re.sub(r'<[^>]+>', ' ', d['text']).lower())):
            words.setdefault(w, []).append(d['location'])
    prose = {w for nb in (TOP/'nbs').glob('*.ipynb') for c in json.loads(nb.read_text())['cells']
             if c['cell_type'] == 'markdown' for w in re.findall(r'\b[a-z]{9,}\b', ''.join(c['source']).lower())}
    word, where = next((w, locs[0]) for w, locs in sorted(words.items())  # a word of the prose, not of an output
                       if len(locs) == 1 and '#' in locs[0] and not locs[0].startswith('api/') and w not in titles
                       and w in prose)
    found = [h[len(base):] for h in search(word)]
    assert where in found, (word, where, found)
    page.keyboard.press('Escape')


_CLIPPING = '''() => {
    const problems = [], vw = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > vw + 1)
        problems.push(`the page is ${document.documentElement.scrollWidth}px wide, wider than the window (${vw}px)`);
    document.querySelectorAll('.md-content pre').forEach((pre, i) => {
        if (!pre.offsetParent) return;  // inside a folded solution
        let scroller = null;  // the box a reader sees the code through: the nearest one that scrolls sideways
        for (let a = pre; a && a !== document.body; a = a.parentElement) {
            const o = getComputedStyle(a).overflowX;
            if (o === 'auto' || o === 'scroll') { scroller = a; break; }
            if ((o === 'hidden' || o === 'clip') && a.scrollWidth > a.clientWidth + 1) {
                problems.push(`<pre> ${i}: ${a.className || a.tagName} hides what overflows`); return; }
        }
        const wraps = ['pre-wrap', 'break-spaces', 'pre-line'].includes(getComputedStyle(pre).whiteSpace);
        const wide = pre.scrollWidth > pre.clientWidth + 1 ||
                     pre.getBoundingClientRect().right > pre.parentElement.getBoundingClientRect().right + 1;
        if (wide && !scroller && !wraps) problems.push(`<pre> ${i} is wider than its box and nothing scrolls it`);
        const r = (scroller || pre).getBoundingClientRect();
        if (r.left < -1 || r.right > vw + 1) problems.push(`<pre> ${i} is out of the window (${r.left}..${r.right})`);
    });
    return problems;
}'''


@pytest.mark.parametrize('width', [1280, 390])
def test_code_is_never_clipped(site, browser, width):
    """No page is wider than the window; a block of code too long for it scrolls sideways inside its box, and no
    box around it hides what overflows: on a laptop and on a phone (390 px)."""
    out, base = site
    page, problems = new_page(browser, base, width=width, height=844), []
    for name in pages(out):
        page.goto(base + name, wait_until='load')
        problems += [f'{name}: {p}' for p in page.evaluate(_CLIPPING)]
    assert not problems, '\n'.join(problems[:30])
    page.goto(base + 'model.html', wait_until='load')
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS/f'docs_model_{width}.png'))
    if width < 600:  # a phone: the sidebar is a drawer, closed
        assert not page.locator('.md-sidebar--primary').is_visible() or \
            page.locator('.md-sidebar--primary').bounding_box()['x'] < 0


def test_copy_button(site, browser):
    "A code cell's copy button puts exactly its code on the clipboard."
    out, base = site
    page = new_page(browser, base, permissions=['clipboard-read', 'clipboard-write'])
    page.goto(base + 'model.html', wait_until='load')
    cells = page.locator('.jp-CodeCell .jp-InputArea')
    texts = cells.locator('.clipboard-copy-txt').evaluate_all('es => es.map(e => e.textContent)')
    k = next(i for i, t in enumerate(texts) if t.strip().count('\n') >= 2)
    page.evaluate("navigator.clipboard.writeText('before')")
    cells.nth(k).hover()
    cells.nth(k).locator('clipboard-copy').click()
    page.wait_for_function("t => navigator.clipboard.readText().then(c => c === t)", arg=texts[k], timeout=5000)
    code = cells.nth(k).locator('pre').inner_text()
    assert texts[k].strip() == code.strip()


def test_dark_mode(site, browser):
    "The header's switch turns the site dark, notebook cells too; the choice stays on the next page."
    out, base = site
    page = new_page(browser, base, color_scheme='light')
    page.goto(base + 'model.html', wait_until='load')
    scheme = lambda: page.evaluate('document.body.getAttribute("data-md-color-scheme")')
    lum = lambda sel: page.evaluate('''s => { const c = getComputedStyle(document.querySelector(s)).backgroundColor
        .match(/[\\d.]+/g).map(Number); return c.length > 3 && c[3] === 0 ? null : (c[0] + c[1] + c[2]) / 3; }''', sel)
    assert scheme() == 'default' and lum('body') > 200
    page.locator('label[for="__palette_1"]').click()
    page.wait_for_function('document.body.getAttribute("data-md-color-scheme") === "slate"')
    assert lum('body') < 80
    code = page.locator('.jp-CodeCell .highlight-ipynb').first
    code.scroll_into_view_if_needed()
    color = code.evaluate('e => getComputedStyle(e.querySelector("pre")).color')
    assert sum(map(int, re.findall(r'\d+', color)[:3])) / 3 > 150, f'code is dark on dark: {color}'
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS/'docs_dark.png'))
    page.goto(base + 'index.html', wait_until='load')
    assert scheme() == 'slate'


def test_edit_links(site):
    "Each notebook's page links to its notebook in nbs/ for editing, each API page to the notebook exporting it."
    out, _ = site
    for page, nb in sources().items():
        html = (out/Path(page).with_suffix('.html')).read_text(encoding='utf-8')
        edit = rf'href="https://github\.com/[^"]+/edit/main/nbs/{re.escape(nb)}"'
        assert re.search(edit, html), f'{page}: no edit link to nbs/{nb}'

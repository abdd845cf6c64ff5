"""The docs site as a reader sees it: build it, serve it on 127.0.0.1, and browse it in headless Chromium.

Every page is opened from the index by following links; every internal link must lead to a page that exists
and, for `page.html#anchor`, to an element with that id. No page may show Quarto/nbdev markup (`#|`,
`{target=`, YAML front matter). Screenshots of the index and the model page go to screenshots/.
The search box finds a section by its heading or its text and opens it; each code block's copy button puts
its exact code on the clipboard; no line of code is cut off, on a laptop or on a phone.
"""
import functools, http.server, importlib.util, json, os, re, subprocess, sys, threading
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest

TOP = Path(__file__).resolve().parent.parent
SHOTS = TOP/'screenshots'
# what a reader must never see: Quarto cell options, Quarto link attributes, YAML front matter, nbdev keys
RAW = [re.compile(p) for p in (r'#\|', r'\{target=', r'---\s*\ntitle:', r'\boutput-file:', r'has_sd',
                               r'\{\.callout')]
PROSE_RAW = re.compile(r'```|\]\(|\{#|<!--')  # markdown that did not render, in the prose


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')/'_docs'
    r = subprocess.run([sys.executable, str(TOP/'tools/build_docs.py'), '--out', str(out)],
                       cwd=TOP, capture_output=True, text=True, timeout=600)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, f'build_docs failed:\n{r.stdout}\n{r.stderr}'
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f'http://127.0.0.1:{server.server_address[1]}/'
    server.shutdown(); server.server_close()


def new_page(browser, base, width=1280, height=900, **context):
    page = browser.new_context(viewport={'width': width, 'height': height}, **context).new_page()
    # the site must work offline: anything not from our server (e.g. MathJax's CDN) is refused at once
    page.route('**/*', lambda route: route.continue_() if route.request.url.startswith(base) else route.abort())
    return page


def test_quarto_markup_is_cleaned():
    sys.path.insert(0, str(TOP/'tools'))
    import build_docs as bd
    names = {'01_data.ipynb': 'data.html', '01_data.html': 'data.html', 'data.html': 'data.html'}
    html = bd.fix_links('<a href="01_data.ipynb">a</a><a href="./01_data.html#x">b</a>'
                        '<a href="https://llmplay.github.io/llmplay/data.html#gpt">c</a><a href="https://x.org">d</a>',
                        names, 'https://llmplay.github.io/llmplay')
    assert re.findall(r'href="([^"]*)"', html) == ['data.html', 'data.html#x', 'data.html#gpt', 'https://x.org']
    assert 'target="_blank"' in html.split('x.org')[1]
    md = bd.quarto_md('[source](http://x){target="_blank" style="float:right"}\n## Head {#h .c}\n'
                      '::: {.callout-note}\nNote\n:::\n```\n{target=kept in code}\n```')
    assert md.splitlines()[:3] == ['[source](http://x)', '## Head', '<div class="callout callout-note">']
    assert '{target=kept in code}' in md and md.count('</div>') == 1
    assert bd.directives('#| echo: false\n#| output: asis\nshow_doc(x)') == ({'echo': 'false', 'output': 'asis'}, 'show_doc(x)')
    assert [bd.slug(t) for t in ['Workspace.at', 'The KV cache', '_tidy']] == ['workspace.at', 'the-kv-cache', '_tidy']
    assert bd.math_md('`$HOME` costs $5 and $6') == '`$HOME` costs $5 and $6'
    if importlib.util.find_spec('latex2mathml'): assert '<math' in bd.math_md('position $t$')


def test_build_writes_a_page_per_notebook(site):
    out, _ = site
    spec = (TOP/'nbs/sidebar.yml').read_text()
    listed = [n for n in re.findall(r'[\w.-]+\.ipynb', spec) if (TOP/'nbs'/n).exists()]
    pages = sorted(p.name for p in out.glob('*.html'))
    assert 'index.html' in pages and (out/'site.css').exists()
    assert len(pages) == len(listed), (pages, listed)


def test_every_page_and_link(site, browser):
    out, base = site
    page = new_page(browser, base)
    todo, seen, ids, anchors, problems = [base + 'index.html'], set(), {}, [], []
    nav_orders = set()
    while todo:
        url = todo.pop()
        if url in seen: continue
        seen.add(url)
        resp = page.goto(url, wait_until='load')
        if not resp or not resp.ok:
            problems.append(f'{url}: HTTP {resp.status if resp else "no response"}'); continue
        name = url[len(base):]
        text = page.evaluate('document.body.innerText')
        problems += [f'{name}: shows raw {rx.pattern!r}' for rx in RAW if rx.search(text)]
        prose = page.evaluate("[...document.querySelectorAll('.jp-MarkdownCell, .page-header')].map(e => e.innerText).join('\\n')")
        if m := PROSE_RAW.search(prose): problems.append(f'{name}: unrendered markdown {m[0]!r} in the prose')
        assert page.locator('h1.title').count() == 1, f'{name}: no title'
        assert page.locator('.sidebar .nav-list li.current').count() == 1, f'{name}: current page not marked'
        nav_orders.add(tuple(page.eval_on_selector_all('.sidebar .nav-list > li > a', 'es => es.map(e => e.getAttribute("href"))')))
        broken_imgs = page.eval_on_selector_all('img', 'es => es.filter(e => !e.complete || !e.naturalWidth).map(e => e.src.slice(0, 60))')
        problems += [f'{name}: image does not load: {s}' for s in broken_imgs]
        ids[name] = set(page.eval_on_selector_all('[id]', 'es => es.map(e => e.id)'))
        for href in page.eval_on_selector_all('a[href]', 'es => es.map(e => e.href)'):
            if not href.startswith(base): continue  # external (GitHub source links, nbdev.fast.ai): not followed
            target, frag = urldefrag(href)
            if frag: anchors.append((name, target[len(base):], frag))
            if target not in seen: todo.append(target)
    for src, target, frag in anchors:
        if target not in ids: problems.append(f'{src}: link to {target}#{frag}, a page that did not load')
        elif frag not in ids[target]: problems.append(f'{src}: link to {target}#{frag}, which has no such id')
    built = {p.name for p in out.glob('*.html')}
    visited = {u[len(base):] for u in seen}
    assert not problems, '\n'.join(problems)
    assert built <= visited, f'pages no link leads to: {built - visited}'
    assert visited <= built, f'links to pages that were not built: {visited - built}'
    assert len(nav_orders) == 1, f'the sidebar differs between pages: {nav_orders}'
    print(f'{len(visited)} pages, {len(anchors)} links with anchors: all fine')


def test_screenshots(site, browser):
    out, base = site
    SHOTS.mkdir(exist_ok=True)
    model = 'model.html'
    assert (out/model).exists(), f'{model} was not built'
    page = new_page(browser, base)
    shots = []
    for name, stem in [('index.html', 'docs_index'), (model, 'docs_model')]:
        page.goto(base + name, wait_until='load')
        page.screenshot(path=str(SHOTS/f'{stem}.png'))
        page.screenshot(path=str(SHOTS/f'{stem}_full.png'), full_page=True)
        shots += [SHOTS/f'{stem}.png', SHOTS/f'{stem}_full.png']
    narrow = new_page(browser, base, width=420, height=800)  # a phone: the sidebar folds away
    narrow.goto(base + model, wait_until='load')
    assert not narrow.locator('.sidebar').is_visible() or narrow.locator('.sidebar').bounding_box()['x'] < 0
    narrow.screenshot(path=str(SHOTS/'docs_model_narrow.png'))
    assert all(s.stat().st_size > 10_000 for s in shots)
    print('screenshots:', *shots, sep='\n  ')


# --- search, copy buttons, long lines of code ---------------------------------------------------------------

def search_index(out):
    "The built site's search index (search-index.js) as a dict."
    sys.path.insert(0, str(TOP/'tools'))
    import build_docs as bd
    return bd.read_search_index((out/'search-index.js').read_text(encoding='utf-8'))


def unique_word(index):
    """A word of 8+ letters in the text of exactly one section (and in no heading or page title), preferring a
    section below a heading: (word, section). The search box must find that section and nothing else."""
    secs = index['sections']
    hay = [(s['heading'] + ' ' + s['text']).lower() for s in secs]
    titles = ' '.join(p['title'] for p in index['pages']).lower()
    for s in sorted(secs, key=lambda s: not s['anchor']):
        for w in sorted(set(re.findall(r'[a-z]{8,}', s['text'].lower()))):
            if w not in titles and w not in s['heading'].lower() and sum(w in h for h in hay) == 1:
                return w, s
    raise AssertionError('no word occurs in only one section')


def lone_heading(index):
    "A section headed by a name (an API entry) that no other section mentions: (name, section)."
    secs = index['sections']
    hay = [(s['heading'] + ' ' + s['text']).lower() for s in secs]
    for s in secs:
        h = s['heading'].lower()
        if re.fullmatch(r'[a-z_]\w{5,}', h) and sum(h in x for x in hay) == 1: return h, s
    raise AssertionError('no API entry that only its own section names')


def mentioned_heading(index):
    """A section headed by a name (an API entry) that the text of earlier sections mentions the most: (name,
    section, how many sections hold the name). Ranked by the order of the course, it would not come first."""
    secs = index['sections']
    hay = [(s['heading'] + ' ' + s['text']).lower() for s in secs]
    titles = ' '.join(p['title'] for p in index['pages']).lower()
    headings = [s['heading'].lower() for s in secs]
    best = None
    for i, s in enumerate(secs):
        h = headings[i]
        if not re.fullmatch(r'[a-z_]\w{5,}', h) or h in titles or headings.count(h) > 1: continue
        earlier = sum(h in hay[j] for j in range(i))
        if earlier and (not best or earlier > best[0]): best = (earlier, h, s, sum(h in x for x in hay))
    assert best, 'no API entry is mentioned before it'
    return best[1:]


def test_search_sections():
    """A page body's sections for the index: cut at its headings; prose, code and API docs kept as plain text;
    outputs, math, anchor '#'s and show_doc's "source" links dropped; long text trimmed at a space."""
    sys.path.insert(0, str(TOP/'tools'))
    import build_docs as bd
    body = ('<div class="jp-InputArea"><p>Intro <b>text</b> with <math><mi>x</mi></math> math.</p></div>'
            '<h2 id="the-kv-cache">The <code>KV</code> cache<a class="anchor-link" href="#the-kv-cache">#</a></h2>'
            '<div class="highlight"><pre><span></span><span class="n">cache</span><span class="o">=</span>{}\n</pre></div>'
            '<div class="jp-RenderedText jp-OutputArea-output" data-mime-type="text/plain"><pre>a log line</pre></div>'
            '<div class="jp-RenderedMarkdown jp-OutputArea-output"><hr/><p><a href="https://github.com/x/y/blob/main/y/m.py#L9">'
            'source</a></p><h3 id="kv">kv<a class="anchor-link" href="#kv">#</a></h3><p><em>Keys &amp; values.</em></p></div>'
            '<h2 id="long">Long</h2><p>' + 'word ' * 2000 + '</p>')
    secs = bd.page_sections(body, 'The model', 'A GPT.')
    assert [(s['level'], s['anchor'], s['heading'], s['text']) for s in secs[:3]] == [
        (1, '', 'The model', 'A GPT. Intro text with math.'),
        (2, 'the-kv-cache', 'The KV cache', 'cache={}'),
        (3, 'kv', 'kv', 'Keys & values.')]
    assert secs[3]['heading'] == 'Long' and bd.SEARCH_TEXT_MAX - 5 <= len(secs[3]['text']) <= bd.SEARCH_TEXT_MAX
    assert secs[3]['text'].endswith('word')
    index = {'pages': [{'file': 'a.html', 'title': 'A</script>'}], 'sections': secs}
    assert '</script>' not in bd.search_index_js(index) and bd.read_search_index(bd.search_index_js(index)) == index


def test_search_index(site):
    """search-index.js lists every page and every heading of each; a section's anchor is an id on its page;
    headings and text are plain text (no markup of the page, no Quarto markup) and trimmed."""
    out, _ = site
    sys.path.insert(0, str(TOP/'tools'))
    import build_docs as bd
    index = search_index(out)
    files = [p['file'] for p in index['pages']]
    assert sorted(files) == sorted(p.name for p in out.glob('*.html'))
    assert files[0] == 'index.html' and all(p['title'] and '<' not in p['title'] for p in index['pages'])
    problems = []
    for i, f in enumerate(files):
        page_html = (out/f).read_text(encoding='utf-8')
        ids = set(re.findall(r'\sid="([^"]+)"', page_html))
        headings = re.findall(r'<h[1-6] id="([^"]+)">.*?<a class="anchor-link"', page_html)  # every section heading
        anchors = [s['anchor'] for s in index['sections'] if s['page'] == i]
        if not anchors: problems.append(f'{f}: no sections'); continue
        problems += [f'{f}: heading #{h} is not in the index' for h in headings if h not in anchors]
        problems += [f'{f}: index links to #{a}, which is no id on the page' for a in anchors if a and a not in ids]
        if len(anchors) != len(set(anchors)): problems.append(f'{f}: an anchor twice in the index')
    for s in index['sections']:
        where = f"{files[s['page']]}#{s['anchor']}"
        if not s['heading'].strip(): problems.append(f'{where}: no heading')
        if s['text'] != ' '.join(s['text'].split()): problems.append(f'{where}: text not trimmed')
        if len(s['text']) > bd.SEARCH_TEXT_MAX: problems.append(f'{where}: text longer than SEARCH_TEXT_MAX')
        # code may hold HTML in strings, but no markup of the page itself (highlighting, cells, anchors) may leak
        if re.search(r'<span class="\w{1,3}">|class="(?:jp-|highlight|anchor-link|cm-)', s['heading'] + s['text']):
            problems.append(f'{where}: markup of the page in its text')
        problems += [f'{where}: raw {rx.pattern!r}' for rx in RAW if rx.search(s['text'])]
    assert not problems, '\n'.join(problems)
    entry = next(s for s in index['sections'] if files[s['page']] == 'data.html' and s['anchor'] == 'clean_wikitext')
    assert entry['heading'] == 'clean_wikitext' and 'def clean_wikitext(' in entry['text']  # signature and docs
    size = (out/'search-index.js').stat().st_size
    print(f"search index: {len(index['sections'])} sections, {size / 1024:.0f} KiB")


def test_search(site, browser):
    """'/' focuses the search box; a name found in one section finds it, and Enter opens it at its anchor; a
    function's own API entry is the first hit, above the sections that only mention it; a word in one section's
    text finds that section alone; a query with no match says so; Escape closes the results. On a phone the
    box is in the drawer, and the results fit the screen."""
    out, base = site
    index = search_index(out)
    files = [p['file'] for p in index['pages']]
    SHOTS.mkdir(exist_ok=True)
    page = new_page(browser, base)
    page.goto(base + 'index.html', wait_until='load')
    box, results = page.locator('#search-input'), page.locator('#search-results')
    hits, count = results.locator('a.search-hit'), results.locator('.search-count')
    assert results.is_hidden()
    page.keyboard.press('/')
    assert page.evaluate('document.activeElement.id') == 'search-input', '"/" does not focus the search box'
    # a name found in one section only: its API entry
    lone, sec = lone_heading(index)
    page.keyboard.type(lone)
    count.wait_for()
    assert count.inner_text() == '1 result' and hits.first.get_attribute('href') == f"{files[sec['page']]}#{sec['anchor']}"
    assert hits.first.locator('.search-heading mark').inner_text().lower() == lone
    # a name many sections mention: its own entry (a heading hit) above the sections that use it (text hits),
    # though some of those come earlier in the course
    name, entry, n = mentioned_heading(index)
    box.fill(name)
    count.wait_for()
    hrefs = hits.evaluate_all('es => es.map(e => e.getAttribute("href"))')
    assert len(hrefs) == min(n, 30) and n > 1, (name, n, hrefs)
    assert hrefs[0] == f"{files[entry['page']]}#{entry['anchor']}", (name, hrefs)
    assert all(h.split('#')[0] in files for h in hrefs)
    assert hits.first.locator('.search-heading mark').inner_text().lower() == name
    assert hits.nth(1).locator('.search-snippet mark').first.inner_text().lower() == name  # the match in context
    page.screenshot(path=str(SHOTS/'docs_search.png'))
    box.fill('clean_wikitext')
    hits.first.wait_for()
    page.keyboard.press('Enter')
    page.wait_for_url(base + 'data.html#clean_wikitext')
    assert page.locator('#clean_wikitext').count() == 1
    top = page.evaluate("document.getElementById('clean_wikitext').getBoundingClientRect().top")
    assert 0 <= top < 900, f'the page did not scroll to #clean_wikitext (top {top})'
    assert results.is_hidden()

    word, section = unique_word(index)
    box.fill(word)
    count.wait_for()
    assert count.inner_text() == '1 result', f'{word!r}: {count.inner_text()}'
    href = files[section['page']] + ('#' + section['anchor'] if section['anchor'] else '')
    assert hits.count() == 1 and hits.first.get_attribute('href') == href, (word, href)
    assert hits.first.locator('.search-snippet mark').first.inner_text().lower() == word

    box.fill('zqxjvkqwz')
    results.locator('.search-empty').wait_for()
    assert 'No results' in results.inner_text() and hits.count() == 0
    page.keyboard.press('Enter')  # nothing to open
    assert page.url == base + 'data.html#clean_wikitext'

    box.fill(name.upper())  # case does not matter
    count.wait_for()
    assert hits.first.get_attribute('href') == hrefs[0]
    page.keyboard.press('ArrowDown')
    assert 'selected' in hits.nth(1).get_attribute('class')
    page.keyboard.press('Escape')
    assert results.is_hidden()

    phone = new_page(browser, base, width=390, height=844)
    phone.goto(base + 'model.html', wait_until='load')
    phone.keyboard.press('/')  # opens the drawer, with the box in it
    phone.wait_for_function("document.querySelector('.sidebar').getBoundingClientRect().left >= 0")
    assert phone.evaluate('document.activeElement.id') == 'search-input'
    phone.keyboard.type(name)
    phone.locator('#search-results a.search-hit').nth(1).wait_for()
    r = phone.locator('#search-results').bounding_box()
    assert r['x'] >= 0 and r['x'] + r['width'] <= 390 and r['height'] > 50, r
    phone.screenshot(path=str(SHOTS/'docs_search_narrow.png'))
    phone.locator('#search-results a.search-hit').nth(1).click()
    phone.wait_for_url(base + hrefs[1])
    assert phone.locator('.sidebar').bounding_box()['x'] < 0, 'the drawer stays open after a hit was opened'


_CODE_BLOCKS = '''() => {
    const pres = [...document.querySelectorAll('.jp-InputArea pre')];
    return {
        code: pres.length,
        without: pres.filter(p => { const b = p.closest('.code-block');
                                    return !b || b.querySelectorAll(':scope > .copy-button').length !== 1; }).length,
        outputs: document.querySelectorAll('.jp-OutputArea .copy-button').length,
        prose: document.querySelectorAll('.jp-MarkdownCell .code-block .copy-button').length};
}'''


def test_copy_buttons(site, browser):
    """Every block of code (input cells and code in the prose) has a copy button, outputs have none; the button
    puts the block's exact code on the clipboard (also where navigator.clipboard is missing) and says so."""
    out, base = site
    sys.path.insert(0, str(TOP/'tools'))
    import build_docs as bd
    sources = set()
    for nb in (TOP/'nbs').glob('*.ipynb'):
        for c in json.loads(nb.read_text(encoding='utf-8'))['cells']:
            if c['cell_type'] == 'code':
                sources.add(bd.directives(c['source'] if isinstance(c['source'], str) else ''.join(c['source']))[1])
    page = new_page(browser, base, permissions=['clipboard-read', 'clipboard-write'])
    names = sorted(p.name for p in out.glob('*.html'))
    prose_page = None
    for name in names:
        page.goto(base + name, wait_until='load')
        n = page.evaluate(_CODE_BLOCKS)
        assert n['without'] == 0 and n['outputs'] == 0, f'{name}: {n}'
        if n['prose'] and not prose_page: prose_page = name
    model = next(n for n in ['model.html', 'data.html', 'training.html', 'index.html'] if n in names)
    clipboard = lambda: page.evaluate('navigator.clipboard.readText()')

    page.goto(base + model, wait_until='load')
    blocks = page.locator('.jp-CodeCell .jp-InputArea .code-block')
    texts = blocks.locator('pre').evaluate_all('ps => ps.map(p => p.textContent)')
    k = next(i for i, t in enumerate(texts) if t.strip().count('\n') >= 2)  # a block of a few lines
    expected = texts[k].removesuffix('\n')
    assert expected in sources, f'{model}: code block {k} is not the source of a code cell:\n{expected}'
    page.evaluate("navigator.clipboard.writeText('before')")
    button = blocks.nth(k).locator('.copy-button')
    button.click()
    page.wait_for_function('t => navigator.clipboard.readText().then(c => c === t)', arg=expected, timeout=5000)
    assert clipboard() == expected and button.inner_text() == 'Copied'
    page.wait_for_function("b => b.textContent === 'Copy'", arg=button.element_handle(), timeout=5000)

    # without the Clipboard API (an old browser, a page over plain http): the textarea fallback
    page.evaluate("navigator.clipboard.writeText('before')")
    page.evaluate("Object.defineProperty(navigator, 'clipboard', {value: undefined, configurable: true})")
    blocks.nth(k + 1).locator('.copy-button').click()
    assert blocks.nth(k + 1).locator('.copy-button').inner_text() == 'Copied'
    page.evaluate('delete navigator.clipboard')
    assert clipboard() == texts[k + 1].removesuffix('\n')

    assert prose_page, 'no page has code in its prose (the copy button there is untested)'
    page.goto(base + prose_page, wait_until='load')
    block = page.locator('.jp-MarkdownCell .code-block').first
    block.locator('.copy-button').click()
    page.wait_for_function("() => document.querySelector('.jp-MarkdownCell .copy-button').textContent === 'Copied'")
    assert clipboard() == block.locator('pre').evaluate('p => p.textContent').removesuffix('\n') != ''


_CLIPPING = '''() => {
    const problems = [], vw = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > vw + 1)
        problems.push(`the page is ${document.documentElement.scrollWidth}px wide, wider than the window (${vw}px)`);
    // every <pre>: code in cells and prose, API signatures, outputs (which wrap, but may be too wide anyway)
    document.querySelectorAll('pre').forEach((pre, i) => {
        const r = pre.getBoundingClientRect(), ox = getComputedStyle(pre).overflowX;
        if (r.left < -1 || r.right > vw + 1) problems.push(`<pre> ${i} sticks out of the window (${r.left}..${r.right})`);
        if (pre.scrollWidth > pre.clientWidth + 1 && !['auto', 'scroll'].includes(ox))
            problems.push(`<pre> ${i} is wider than its box and does not scroll (overflow-x: ${ox})`);
        for (let a = pre.parentElement; a && a !== document.body; a = a.parentElement)
            if (['hidden', 'clip'].includes(getComputedStyle(a).overflowX))
                problems.push(`<pre> ${i}: an ancestor (${a.className}) hides what overflows`);
    });
    let longest = null;
    document.querySelectorAll('.jp-InputArea pre').forEach((pre, i) => {
        const lines = pre.textContent.split('\\n'), n = Math.max(...lines.map(l => l.length));
        if (!longest || n > longest.n) longest = {i, n, sw: pre.scrollWidth, cw: pre.clientWidth, ox: getComputedStyle(pre).overflowX};
    });
    return {problems, longest};
}'''

_LAST_CHAR_SHOWN = '''i => {
    // scroll the block to its end: the last character of its longest line must be inside the visible box
    const pre = document.querySelectorAll('.jp-InputArea pre')[i];
    pre.scrollLeft = pre.scrollWidth;
    const text = pre.textContent, lines = text.split('\\n');
    let start = 0, best = 0, bestStart = 0;
    for (const l of lines) { if (l.length > best) { best = l.length; bestStart = start; } start += l.length + 1; }
    let at = bestStart + best - 1;
    const walk = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
        if (at < node.length) {
            const range = document.createRange();
            range.setStart(node, at); range.setEnd(node, at + 1);
            const c = range.getBoundingClientRect(), box = pre.getBoundingClientRect();
            return {shown: c.width > 0 && c.left >= box.left - 1 && c.right <= box.left + pre.clientWidth + 1
                           && c.right <= document.documentElement.clientWidth, char: c.left, box: [box.left, box.left + pre.clientWidth]};
        }
        at -= node.length;
    }
    return {shown: false};
}'''


@pytest.mark.parametrize('width', [1280, 390])
def test_code_is_never_clipped(site, browser, width):
    """Long lines of code scroll sideways inside their block (overflow-x: auto), no ancestor hides them, no
    block sticks out of the window, the page itself is never wider than the window, and the end of the
    longest line can be scrolled into view: on a laptop and on a phone."""
    out, base = site
    page = new_page(browser, base, width=width, height=900)
    problems, longest = [], None
    for name in sorted(p.name for p in out.glob('*.html')):
        page.goto(base + name, wait_until='load')
        r = page.evaluate(_CLIPPING)
        problems += [f'{name}: {p}' for p in r['problems']]
        if r['longest'] and (not longest or r['longest']['n'] > longest[1]['n']): longest = (name, r['longest'])
    assert not problems, '\n'.join(problems[:30])
    name, block = longest
    assert block['sw'] > block['cw'] and block['ox'] in ('auto', 'scroll'), (name, block)  # a line too long for the box
    page.goto(base + name, wait_until='load')
    code = page.locator('.jp-InputArea pre').nth(block['i'])
    code.evaluate("p => window.scrollTo(0, p.getBoundingClientRect().top + scrollY - 120)")
    code.hover()  # shows the copy button
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS/f'docs_long_code_{width}.png'))
    shown = page.evaluate(_LAST_CHAR_SHOWN, block['i'])
    assert shown['shown'], f'{name}: the end of code block {block["i"]} cannot be scrolled into view: {shown}'
    page.screenshot(path=str(SHOTS/f'docs_long_code_{width}_end.png'))
    print(f'{width}px: the longest line ({block["n"]} characters) is in {name}: its block scrolls ({block["sw"]} > {block["cw"]} px)')

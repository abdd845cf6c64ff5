"""The docs site as a reader sees it: build it, serve it on 127.0.0.1, and browse it in headless Chromium.

Every page is opened from the index by following links; every internal link must lead to a page that exists
and, for `page.html#anchor`, to an element with that id. No page may show Quarto/nbdev markup (`#|`,
`{target=`, YAML front matter). Screenshots of the index and the model page go to screenshots/.
"""
import functools, http.server, importlib.util, os, re, subprocess, sys, threading
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


def new_page(browser, base, width=1280, height=900):
    page = browser.new_context(viewport={'width': width, 'height': height}).new_page()
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
        if target in ids and frag not in ids[target]:
            problems.append(f'{src}: link to {target}#{frag}, which has no such id')
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
    model = next((n for n in ['model.html', 'training.html', 'workspace.html'] if (out/n).exists()), 'index.html')
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

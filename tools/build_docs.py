#!/usr/bin/env python3
"""Build the course website into `_docs/` without Quarto: `python tools/build_docs.py [--out DIR] [--force]`.

Where Quarto is installed, `nbdev_docs` builds the standard nbdev site from the same notebooks. Here:
1. nbdev's own processing, as `nbdev.serve.proc_nbs` does it (`nbdev.serve_drv.main` in spawned workers,
   cached in `_proc/` by modification time): front matter, `show_doc` entries, hidden and exported cells
   removed. Only the processors run: unlike the `nbdev_proc_nbs` / `nbdev_docs` commands this never tries
   to install Quarto or run pip. A notebook that fails is reported and gets no page (exit status 1).
2. Each page in `nbs/sidebar.yml` order is cleaned of what only Quarto understands (the YAML front-matter
   cell, `#|` cell options, `{target=...}` link attributes, callouts, nbdev's `has_sd` key; `$math$` becomes
   MathML), then nbconvert's HTML exporter renders it with tools/docs/templates/llmplay (a sidebar with the
   course's groups and the page's sections, title, description, previous/next) and tools/docs/site.css.
3. Links between notebooks (`01_data.ipynb`, `01_data.html`, and nbdev's links to the hosted site) point
   to the built pages; heading ids follow Quarto's, so `page.html#symbol` links land where they should.
4. Search, offline: `search-index.js` holds every page's sections (page, heading, anchor, the section's prose,
   API docs and code as plain text, no outputs); tools/docs/site.js searches it in the browser (the box in the
   sidebar, "/" to focus it) and gives every code block a copy button.
"""
from __future__ import annotations
import argparse, html, json, os, re, shutil, sys, tempfile, time, warnings
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cells import cell_options  # noqa: E402

TOP = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent/'docs'
NB_KEYS = {'markdown': ('cell_type', 'id', 'metadata', 'source', 'attachments'),
           'code': ('cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count'),
           'raw': ('cell_type', 'id', 'metadata', 'source', 'attachments')}
WIDGET = 'application/vnd.jupyter.widget-view+json'
IMAGES = {'.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp'}


def warn(msg): print(f'build_docs: warning: {msg}', file=sys.stderr, flush=True)


# --- the sidebar ---------------------------------------------------------------------------------------

def sidebar(nbs: Path) -> list[tuple[str | None, str]]:
    "(section, notebook file name) for each page in sidebar.yml, in order; warns about missing notebooks."
    import yaml
    spec = yaml.safe_load((nbs/'sidebar.yml').read_text(encoding='utf-8'))['website']['sidebar']['contents']
    pages = []
    def walk(items, section):
        for it in items:
            if isinstance(it, str): href = it
            elif 'contents' in it:
                walk(it['contents'], it.get('section', section)); continue
            else: href = it.get('href', '')
            if not href.endswith('.ipynb'): warn(f'sidebar.yml: skipping {href!r} (not a notebook)'); continue
            if (nbs/href).exists(): pages.append((section, href))
            else: warn(f'sidebar.yml lists {href}, which does not exist yet: skipped')
    walk(spec, None)
    listed = {p for _, p in pages}
    for nb in sorted(nbs.glob('*.ipynb')):
        if nb.name not in listed and not nb.name.startswith('_'):
            warn(f'{nb.name} is not in sidebar.yml: it gets no page')
    return pages


# --- step 1: nbdev's processing ------------------------------------------------------------------------

def process(names: list[str], force=False) -> tuple[Path, list[str]]:
    """Run nbdev's notebook processors on `names` into _proc/, the folder `nbdev_docs` renders from.

    The same steps as `nbdev.serve.proc_nbs` (its caching by modification time, `nbdev.serve_drv.main` in
    spawned workers with IN_TEST=1), one notebook at a time so that one broken notebook does not stop the
    others. Neither installs anything (the Quarto/pip trap is in the `nbdev_proc_nbs`/`nbdev_docs` commands).
    Returns the folder and the errors."""
    import nbdev.serve, nbdev.serve_drv
    from concurrent.futures import ProcessPoolExecutor
    from nbdev.processors import FilterDefaults
    from multiprocessing import get_context
    from nbdev.config import get_config
    cfg = get_config()
    cache = cfg.config_path/'_proc'
    # show_doc output depends on the exported package as well as the notebook
    newest = max([cfg.config_file.stat().st_mtime, Path(nbdev.serve.__file__).stat().st_mtime] +
                 [p.stat().st_mtime for p in cfg.lib_path.glob('*.py')])
    cache.mkdir(parents=True, exist_ok=True)
    if force or cache.stat().st_mtime < newest:
        shutil.rmtree(cache); cache.mkdir()
    jobs = []
    for name in names:
        src, dst = cfg.nbs_path/name, cache/name
        if force or not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime: jobs.append((src, dst))
        dst.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    if jobs:
        # nbdev_docs's own worker, nbdev.serve_drv.main, in spawned processes (IPython replaces their __main__,
        # so the task must be importable by name); they get the parent's sys.path: the repo's package first
        if str(cfg.config_path) not in sys.path: sys.path.insert(0, str(cfg.config_path))
        with tempfile.TemporaryDirectory(prefix='llmplay-docs-') as root:
            saved = os.environ.get('LLMPLAY_ROOT')
            os.environ['LLMPLAY_ROOT'] = root  # import cells run: keep what they touch out of the real workspace
            try:
                with ProcessPoolExecutor(min(2, os.cpu_count() or 1, len(jobs)), mp_context=get_context('spawn')) as ex:
                    futures = {ex.submit(nbdev.serve_drv.main, (src, dst, FilterDefaults)): (src, dst) for src, dst in jobs}
                    for f, (src, dst) in futures.items():
                        if e := f.exception():
                            dst.unlink(missing_ok=True)  # never render a stale page
                            first = (str(e).splitlines() or [type(e).__name__])[0]  # "Error in notebook: T in cell N :"
                            cause = re.findall(r'^(\w+(?:Error|Exception|Exit|Interrupt)\b.*)$', str(e.__cause__ or ''), re.M)
                            errors.append(f'{src.name}: {first} {cause[0] if cause else ""}')
            finally:
                if saved is None: os.environ.pop('LLMPLAY_ROOT', None)
                else: os.environ['LLMPLAY_ROOT'] = saved
    cache.touch()
    return cache, errors


# --- step 2: from Quarto's dialect to plain notebooks ----------------------------------------------------

_ATTR = r'(?:#[\w:.-]+|\.[\w-]+|[\w-]+=(?:"[^"]*"|\'[^\']*\'|[^\s}]+))'
_re_attrs = re.compile(r'(?<=[)\]])\{' + _ATTR + r'(?:\s+' + _ATTR + r')*\}')        # [x](url){target="_blank"}
_re_head_attrs = re.compile(r'^(#{1,6} .*?)\s*\{' + _ATTR + r'(?:\s+' + _ATTR + r')*\}\s*$')  # ## Title {#id}
_re_callout = re.compile(r'^:::+\s*\{?\.?callout-(\w+)[^}]*\}?\s*$')


def quarto_md(md: str) -> str:
    "Markdown without Quarto-only syntax: attribute blocks dropped, callouts as plain <div>s."
    out, fence, depth = [], None, 0
    for line in md.splitlines():
        s = line.lstrip()
        if fence:
            if s.startswith(fence): fence = None
            out.append(line); continue
        if s.startswith('```') or s.startswith('~~~'):
            fence = s[:3]; out.append(line); continue
        if m := _re_callout.match(s):
            out += [f'<div class="callout callout-{m[1]}">', '']; depth += 1; continue
        if depth and re.fullmatch(r':::+\s*', s):
            out += ['', '</div>']; depth -= 1; continue
        line = _re_head_attrs.sub(r'\1', line)
        out.append(_re_attrs.sub('', line))
    out += ['', '</div>'] * depth
    return '\n'.join(out)


_re_fence_split = re.compile(r'(^[ \t]*(?:```|~~~)[^\n]*\n[\s\S]*?^[ \t]*(?:```|~~~)[ \t]*$)', re.M)
_re_code_span = re.compile(r'((`+)[\s\S]*?(?<!`)\2(?!`))')
_re_display_math = re.compile(r'\$\$([\s\S]+?)\$\$')
_re_inline_math = re.compile(r'(?<![\\$\w])\$(?=[^\s$])([^$\n]+?)(?<=[^\s\\])\$(?![\w$])')


def math_md(md: str) -> str:
    """`$...$` and `$$...$$` in prose as MathML, which browsers render without JavaScript or a network.

    Needs `latex2mathml` (a dev requirement); without it the math stays as TeX and the page loads MathJax."""
    try: from latex2mathml.converter import convert
    except ImportError: return md
    def conv(m, display):
        try: return convert(m[1].strip(), display=display).replace('\n', '')
        except Exception: return m[0]
    def prose(text):
        text = _re_display_math.sub(lambda m: conv(m, 'block'), text)
        return _re_inline_math.sub(lambda m: conv(m, 'inline'), text)
    out = []
    for i, chunk in enumerate(_re_fence_split.split(md)):
        if i % 2: out.append(chunk); continue
        parts = _re_code_span.split(chunk)  # text, span, backticks, text, ...
        out.append(''.join(prose(p) if j % 3 == 0 else p for j, p in enumerate(parts) if j % 3 != 2))
    return ''.join(out)


def directives(src: str) -> tuple[dict, str]:
    "The leading `#| key: value` cell options and the source without them."
    return cell_options(src)


def front_matter(cell) -> dict:
    import yaml
    src = cell['source'] if isinstance(cell['source'], str) else ''.join(cell['source'])
    try: fm = yaml.safe_load(src.strip().strip('-')) if src.lstrip().startswith('---') else None
    except yaml.YAMLError: return {}
    return fm if isinstance(fm, dict) else {}


def plain_output(o) -> dict:
    "An output without Quarto attributes in its markdown; widgets (which need a live kernel) as a note."
    o = dict(o)
    data = o.get('data')
    if data is not None:
        data = dict(data)
        if WIDGET in data:  # a progress bar's text stays; a real widget needs a live kernel
            text = data.get('text/plain', '')
            text = text if isinstance(text, str) else ''.join(text)
            data = ({'text/plain': text} if text.strip() and not re.match(r'^\w+\(\w+=', text) else
                    {'text/html': '<p class="widget-note">An interactive widget: run this notebook in JupyterLab to use it.</p>'})
        if 'text/markdown' in data:
            md = data['text/markdown']
            data['text/markdown'] = math_md(quarto_md(md if isinstance(md, str) else ''.join(md)))
        o['data'] = data
    return o


def clean(nb) -> tuple[dict, dict]:
    "A standard nbformat notebook from a `_proc/` one, and its page metadata (title, description, output-file)."
    import nbformat
    meta, cells = {}, []
    for i, c in enumerate(nb['cells']):
        src = c['source'] if isinstance(c['source'], str) else ''.join(c['source'])
        if c['cell_type'] == 'raw':
            if fm := front_matter(c):
                meta.update(fm); continue
        if c['cell_type'] == 'markdown':
            if src.strip().startswith('<!-- WARNING: THIS FILE WAS AUTOGENERATED'): continue
            src = math_md(quarto_md(src))
        md = dict(c.get('metadata', {}))
        if c['cell_type'] == 'code':
            opts, src = directives(src)
            if opts.get('include') == 'false': continue
            outputs = [plain_output(o) for o in c.get('outputs', [])]
            if opts.get('output') == 'false': outputs = []
            if opts.get('output') == 'asis':  # Quarto renders printed text as markdown
                outputs = [{'output_type': 'display_data', 'metadata': {}, 'data': {'text/markdown': math_md(quarto_md(
                           o['text'] if isinstance(o['text'], str) else ''.join(o['text'])))}}
                           if o.get('output_type') == 'stream' and o.get('name') == 'stdout' else o for o in outputs]
            if opts.get('echo') == 'false' or not src.strip():
                md['transient'] = {'remove_source': True}
            if opts.get('code-fold') in ('true', 'show'): md['code_fold'] = opts['code-fold']
            if (md.get('jupyter') or {}).get('source_hidden'): md['code_fold'] = 'true'  # an exercise's solution: folded
            if c.get('has_sd'): md['tags'] = [*md.get('tags', []), 'show-doc']  # styled as an API entry
            if not src.strip() and not outputs: continue
            c = {**c, 'outputs': outputs, 'execution_count': None}
        c = {k: v for k, v in {**c, 'source': src, 'metadata': md}.items() if k in NB_KEYS[c['cell_type']]}
        c.setdefault('id', f'cell-{i}')
        cells.append(c)
    out = nbformat.reads(json.dumps({'cells': cells, 'metadata': {'language_info': {'name': 'python'}},  # reads joins
                                     'nbformat': 4, 'nbformat_minor': 5}), as_version=4)        # multi-line strings
    nbformat.validate(out)
    return out, meta


# --- step 3: HTML -------------------------------------------------------------------------------------

def slug(text: str) -> str:
    "Quarto's (pandoc's) heading id: lower case, punctuation dropped, spaces as hyphens."
    s = re.sub(r'[^\w\s.-]', '', text.strip().lower())
    s = re.sub(r'\s+', '-', s)
    return re.sub(r'^[^a-z_]+', '', s) or 'section'


_re_heading = re.compile(r'<h([1-6]) id="[^"]*">(.*?)<a class="anchor-link" href="#[^"]*">[^<]*</a></h\1>', re.S)


def fix_headings(body: str) -> tuple[str, list[tuple[int, str, str]]]:
    "Headings with Quarto's ids (unique), and the (level, id, text) of each for the page's contents."
    seen, toc = {}, []
    def sub(m):
        text = html.unescape(re.sub(r'<[^>]+>', '', m[2]))
        base = slug(text); n = seen.get(base, 0); seen[base] = n + 1
        hid = base if n == 0 else f'{base}-{n}'
        toc.append((int(m[1]), hid, text))
        return f'<h{m[1]} id="{hid}">{m[2]}<a class="anchor-link" href="#{hid}" aria-label="link to this section">#</a></h{m[1]}>'
    return _re_heading.sub(sub, body), toc


def fix_links(body: str, names: dict[str, str], site_url: str) -> str:
    "Links to notebooks and to the hosted site point to the built pages; external links open a new tab."
    def sub(m):
        href = html.unescape(m[2])
        if site_url and (href + '/').startswith(site_url + '/'): href = href[len(site_url) + 1:] or 'index.html'
        if re.match(r'^[a-z][a-z0-9+.-]*:', href, re.I):
            return f'<a{m[1]} href="{html.escape(href)}" target="_blank" rel="noopener"'
        path, hash_, frag = href.partition('#')
        if path.removeprefix('./') in names: href = names[path.removeprefix('./')] + hash_ + frag
        return f'<a{m[1]} href="{html.escape(href)}"'
    return re.sub(r'<a\b([^>]*?)\s+href="([^"]*)"', sub, body)


def drop_dead_symbol_links(bodies: list[str], files: list[str]) -> list[str]:
    """nbdev links every backticked name it knows, private ones too, but shows docs only for public ones:
    a link to a symbol with no entry on its page becomes plain code (as a reader would want)."""
    ids = {f: set(re.findall(r'\sid="([^"]+)"', b)) for f, b in zip(files, bodies)}
    def sub(m):
        return m[0] if m[1] in ids and m[2] in ids[m[1]] else m[3]
    return [re.sub(r'<a href="([^"#]+\.html)#([^"]+)">(<code>[^<]*</code>)</a>', sub, b) for b in bodies]


def inline_md(text: str) -> str:
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    return re.sub(r'^<p>(.*)</p>\s*$', r'\1', markdown2html_mistune(text).strip(), flags=re.S)


def nav_html(pages: list[dict], current: dict) -> str:
    "The sidebar: the site's name, then each group's pages; the current one highlighted, with its sections."
    out, section = [], ...
    for p in pages:
        if p['section'] != section:
            if out: out.append('</ul>')
            section = p['section']
            if section: out.append(f'<p class="nav-section">{html.escape(section)}</p>')
            out.append('<ul class="nav-list">')
        cur = p is current
        li, aria = (' class="current"', ' aria-current="page"') if cur else ('', '')
        label = 'Overview' if p['file'] == 'index.html' else inline_md(p['title'])
        out.append(f'<li{li}><a href="{p["file"]}"{aria}>{label}</a>')
        if cur and p.get('toc'):
            out.append('<ul class="nav-toc">' + ''.join(
                f'<li><a href="#{hid}">{html.escape(text)}</a></li>' for lvl, hid, text in p['toc'] if lvl == 2) + '</ul>')
        out.append('</li>')
    out.append('</ul>')
    return '\n'.join(out)


def pager_html(pages, i) -> str:
    prev = pages[i - 1] if i > 0 else None
    nxt = pages[i + 1] if i + 1 < len(pages) else None
    title = lambda p: 'Overview' if p['file'] == 'index.html' else inline_md(p['title'])
    link = lambda p, cls, label: (f'<a class="{cls}" href="{p["file"]}"><span>{label}</span>{title(p)}</a>'
                                  if p else '<span></span>')
    return f'<nav class="pager">{link(prev, "prev", "Previous")}{link(nxt, "next", "Next")}</nav>'


_re_math = re.compile(r'\$\$.+?\$\$|(?<![\w$])\$[^\s$][^$\n]*?(?<!\s)\$(?![\w$])|\\\(.+?\\\)', re.S)


def has_math(body: str) -> bool:
    text = re.sub(r'<(pre|code|script|style)\b.*?</\1>', '', body, flags=re.S)
    return bool(_re_math.search(re.sub(r'<[^>]+>', '', text)))


# --- the search index ---------------------------------------------------------------------------------

SEARCH_TEXT_MAX = 5000  # characters of a section's text the index keeps (its heading and page title always)
SEARCH_VAR = 'llmplaySearchIndex'  # search-index.js sets window.<this>; a <script> loads it also from file://


class _Sections(HTMLParser):
    """A page body cut at its headings: the text before the first heading, then each `<hN id>` with the text
    after it. Kept: prose, code, and markdown outputs (the API docs); dropped: other outputs (logs, tables,
    widgets), math (MathML reads as noise), scripts, styles, anchor `#`s and `source` links."""
    VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr'}
    INLINE = {'a', 'abbr', 'b', 'cite', 'code', 'em', 'i', 'kbd', 'mark', 'q', 's', 'small', 'span', 'strong',
              'sub', 'sup', 'u', 'var'}
    SKIP = {'script', 'style', 'math', 'svg', 'button', 'template', 'noscript', 'textarea', 'select'}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.skip, self.in_heading = [], 0, None  # open elements (tag, skipped)
        self.sections = [dict(level=1, anchor='', heading=[], text=[])]

    def handle_starttag(self, tag, attrs, void=False):
        a = dict(attrs)
        cls = (a.get('class') or '').split()
        skipped = (tag in self.SKIP or 'anchor-link' in cls or
                   ('jp-OutputArea-output' in cls and 'jp-RenderedMarkdown' not in cls) or
                   (tag == 'a' and bool(re.search(r'/blob/[^#]+#L\d+$', a.get('href') or ''))))  # show_doc's "source"
        if tag not in self.INLINE: self.data(' ')
        if re.fullmatch(r'h[1-6]', tag) and a.get('id') and not self.skip and not self.in_heading:
            self.sections.append(dict(level=int(tag[1]), anchor=a['id'], heading=[], text=[]))
            self.in_heading = tag
        if void or tag in self.VOID: return
        self.stack.append((tag, skipped))
        self.skip += skipped

    def handle_startendtag(self, tag, attrs): self.handle_starttag(tag, attrs, void=True)

    def handle_endtag(self, tag):
        if tag == self.in_heading: self.in_heading = None
        if tag not in self.INLINE: self.data(' ')
        if not any(t == tag for t, _ in self.stack): return  # a stray end tag
        while self.stack:
            t, skipped = self.stack.pop()
            self.skip -= skipped
            if t == tag: break

    def handle_data(self, data): self.data(data)

    def data(self, text):
        if not self.skip: self.sections[-1]['heading' if self.in_heading else 'text'].append(text)


def plain(html_text: str) -> str:
    "Text of a fragment of HTML, whitespace collapsed."
    return ' '.join(html.unescape(re.sub(r'<[^>]+>', ' ', html_text)).split())


def trim(text: str, n: int) -> str:
    "At most about `n` characters of `text`, cut at a space."
    return text if len(text) <= n else text[:n].rsplit(' ', 1)[0]


def page_sections(body: str, title: str, description: str = '') -> list[dict]:
    """The sections of one page for the search index: level, anchor (the heading's id; '' for the text above
    the first heading, whose heading is the page's title), heading, text. Text is plain and trimmed."""
    parser = _Sections()
    parser.feed(body); parser.close()
    out = []
    for i, s in enumerate(parser.sections):
        text = ' '.join(''.join(s['text']).split())
        heading = ' '.join(''.join(s['heading']).split())
        if i == 0: heading, text = title, ' '.join(filter(None, [description, text]))  # the page itself
        out.append(dict(level=s['level'], anchor=s['anchor'], heading=heading, text=trim(text, SEARCH_TEXT_MAX)))
    return out


def search_index(pages: list[dict], bodies: list[str]) -> dict:
    """The site's search index: `pages` (file and plain title, in sidebar order) and `sections`, each with its
    `page` (position in `pages`), `level`, `anchor`, `heading` and `text`. A hit links to `file#anchor`."""
    index = {'pages': [], 'sections': []}
    for i, (p, body) in enumerate(zip(pages, bodies)):
        title = plain(inline_md(p['title']))
        index['pages'].append({'file': p['file'], 'title': title})
        index['sections'] += [{'page': i, **s} for s in page_sections(body, title, plain(inline_md(p['description'] or '')))]
    return index


def search_index_js(index: dict) -> str:
    "search-index.js: the index as a script (a <script> loads it from file:// too, where fetch() cannot)."
    data = json.dumps(index, ensure_ascii=False, separators=(',', ':')).replace('</', '<\\/')
    return f'window.{SEARCH_VAR} = {data};\n'


def read_search_index(js: str) -> dict:
    "The index from search-index.js's text."
    return json.loads(js.split('=', 1)[1].strip().rstrip(';'))


MATHJAX = ('<script>window.MathJax = {tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]]}};</script>\n'
           '<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>')


def exporter():
    from nbconvert import HTMLExporter
    return HTMLExporter(extra_template_basedirs=[str(ASSETS/'templates')], template_name='llmplay',
                        exclude_input_prompt=True, exclude_output_prompt=True, anchor_link_text='#')


def site_css() -> str:
    from pygments.formatters import HtmlFormatter
    return ((ASSETS/'site.css').read_text(encoding='utf-8') + '\n/* syntax highlighting (pygments) */\n' +
            HtmlFormatter(style='friendly').get_style_defs('.highlight'))


def build(out: Path = TOP/'_docs', force=False) -> tuple[list[Path], list[str]]:
    "Build the site into `out`: the pages written (index.html first) and the notebooks that failed."
    import nbformat
    from nbdev.config import get_config
    t0 = time.time()
    cfg = get_config()
    nbs = cfg.nbs_path
    entries = sidebar(nbs)
    proc, errors = process([name for _, name in entries], force)
    for e in errors: warn(f'nbdev could not process {e}')
    t1 = time.time()
    site_url = (cfg.get('doc_host', '') + cfg.get('doc_baseurl', '')).rstrip('/')
    pages = []
    for section, name in entries:
        src = proc/name
        if not src.exists(): warn(f'{name} was not processed (see above): skipped'); continue
        nb, meta = clean(json.loads(src.read_text(encoding='utf-8')))
        stem = Path(name).stem
        file = 'index.html' if stem == 'index' else meta.get('output-file') or f'{stem}.html'
        title = meta.get('title') or stem
        pages.append(dict(section=section, name=name, file=file, title=title,
                          description=meta.get('description', ''), nb=nb))
    if not any(p['file'] == 'index.html' for p in pages): warn('no index.ipynb in sidebar.yml: the site has no index.html')
    names = {}
    for p in pages:
        stem = Path(p['name']).stem
        for alias in (p['name'], stem + '.html', p['file'], stem):
            names[alias] = p['file']
    exp = exporter()
    bodies = []
    for p in pages:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # nbconvert's notes on missing kernel metadata
            body, _ = exp.from_notebook_node(p['nb'])
        body = fix_links(body, names, site_url)
        body, p['toc'] = fix_headings(body)
        bodies.append(body)
    bodies = drop_dead_symbol_links(bodies, [p['file'] for p in pages])
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    (out/'site.css').write_text(site_css(), encoding='utf-8')
    shutil.copy2(ASSETS/'site.js', out/'site.js')
    index = search_index(pages, bodies)
    (out/'search-index.js').write_text(search_index_js(index), encoding='utf-8')
    site_title = cfg.get('title', cfg.lib_name)
    written = []
    for i, (p, body) in enumerate(zip(pages, bodies)):
        is_index = p['file'] == 'index.html'
        head = f'<title>{html.escape(p["title"] if is_index else p["title"] + " – " + site_title)}</title>\n' \
               f'<meta name="description" content="{html.escape(p["description"])}">'
        if has_math(body): head += '\n' + MATHJAX
        header = (f'<header class="page-header"><h1 class="title">{inline_md(p["title"])}</h1>' +
                  (f'<p class="description">{inline_md(p["description"])}</p>' if p['description'] else '') +
                  '</header>')
        page = (body.replace('<!--@@HEAD@@-->', head).replace('<!--@@NAV@@-->', nav_html(pages, p))
                    .replace('<!--@@HEADER@@-->', header).replace('<!--@@PAGER@@-->', pager_html(pages, i))
                    .replace('<!--@@SITE@@-->', html.escape(site_title)))
        (out/p['file']).write_text(page, encoding='utf-8')
        written.append(out/p['file'])
    for f in nbs.rglob('*'):  # pictures the notebooks' markdown refers to, e.g. ![](images/x.png)
        rel = f.relative_to(nbs)
        if f.suffix.lower() in IMAGES and not any(part[0] in '._' for part in rel.parts):
            (out/rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, out/rel)
    (out/'.nojekyll').touch()
    print(f'build_docs: {len(written)} pages in {out} ({t1 - t0:.1f}s processing notebooks, '
          f'{time.time() - t1:.1f}s HTML): ' + ', '.join(p['file'] for p in pages), flush=True)
    print(f'build_docs: search index: {len(index["sections"])} sections, '
          f'{(out/"search-index.js").stat().st_size / 1024:.0f} KiB', flush=True)
    if errors: print(f'build_docs: {len(errors)} notebook(s) failed and got no page (see the warnings above)', file=sys.stderr)
    return sorted(written, key=lambda w: w.name != 'index.html'), errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', type=Path, default=TOP/'_docs', help='output folder (default: _docs/)')
    ap.add_argument('--force', action='store_true', help='reprocess every notebook, ignoring _proc/ cache')
    a = ap.parse_args()
    os.chdir(TOP)
    _, errors = build(a.out.resolve(), a.force)
    sys.exit(1 if errors else 0)


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Build the course website into `_docs/` with MkDocs: `python tools/docsite.py [--out DIR] [--force]`.

The engine is MkDocs with the Material theme (search, dark mode, copy buttons, phone layout, "edit this page"),
mkdocs-jupyter (notebooks as pages, with their outputs) and mkdocstrings (a page per module's API); mkdocs.yml
holds their settings. This file prepares what they read, then runs them:
1. nbdev's own processing of the notebooks, `nbdev.serve.proc_nbs` (cached in `_proc/`): front matter, `show_doc`
   entries, hidden and exported cells removed. Unlike the `nbdev_proc_nbs` / `nbdev_docs` commands it never tries
   to install Quarto or run pip.
2. Each notebook, cleaned of what only Quarto reads (the front matter becomes the page's title,
   `#|` options, `{target=...}` link attributes, nbdev's `has_sd` key, widgets that need a kernel; `$math$` becomes
   MathML, which browsers draw without a script or a network), its exercise solutions folded, is saved under its
   page's name (01_data.ipynb -> data.ipynb -> data.html, the names nbdev's links use) in `_proc/site/`, with
   nbs/images and one API page per module of the package.
3. MkDocs builds the site, its nav made from nbs/sidebar.yml (the one list of pages, which Quarto reads too; a
   notebook it does not list still gets a page, as with Quarto). This file is also mkdocs.yml's hook: it puts the
   headings of a notebook's prose where Material's search and contents find them, and each page's "edit" link
   on its notebook.
"""
from __future__ import annotations
import argparse, html, json, os, re, shutil, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cells import cell_options  # noqa: E402

TOP = Path(__file__).resolve().parent.parent
NBS, PROC = TOP/'nbs', TOP/'_proc'
SITE_SRC = PROC/'site'  # mkdocs.yml's docs_dir
WIDGET = 'application/vnd.jupyter.widget-view+json'


def warn(msg): print(f'docsite: warning: {msg}', file=sys.stderr, flush=True)


# --- the sidebar: one list of pages ----------------------------------------------------------------------

def sidebar_spec(nbs: Path = NBS) -> list:
    import yaml
    return yaml.safe_load((nbs/'sidebar.yml').read_text(encoding='utf-8'))['website']['sidebar']['contents']


def sidebar(nbs: Path = NBS) -> list[tuple[str | None, str]]:
    "(section, notebook file name) for each page in sidebar.yml, in order; warns about missing notebooks."
    pages = []
    def walk(items, section):
        for it in items:
            if isinstance(it, dict) and 'contents' in it: walk(it['contents'], it.get('section', section)); continue
            href = it if isinstance(it, str) else it.get('href', '')
            if not href.endswith('.ipynb'): warn(f'sidebar.yml: skipping {href!r} (not a notebook)')
            elif (nbs/href).exists(): pages.append((section, href))
            else: warn(f'sidebar.yml lists {href}, which does not exist yet: skipped')
    walk(sidebar_spec(nbs), None)
    listed = {p for _, p in pages}
    for nb in sorted(p.name for p in nbs.glob('*.ipynb') if p.name not in listed and not p.name.startswith('_')):
        warn(f'{nb} is not in sidebar.yml: its page is in no menu')
    return pages


def nav(pages: dict[str, dict], modules: list[str], nbs: Path = NBS) -> list:
    "MkDocs' nav: sidebar.yml's tree of notebooks as their pages, then the API pages."
    def walk(items):
        out = []
        for it in items:
            if isinstance(it, dict) and 'contents' in it:
                out.append({it.get('section', ''): walk(it['contents'])}); continue
            p = pages.get(it if isinstance(it, str) else it.get('href', ''))
            if p: out.append({p['nav_title']: p['file']})
        return out
    return walk(sidebar_spec(nbs)) + [{'API': [{f'llmplay.{m}': f'api/{m}.md'} for m in modules]}]


# --- step 1: nbdev's processing --------------------------------------------------------------------------

def process(force=False) -> list[str]:
    """nbdev's processing of every notebook into _proc/ (what `nbdev_docs` renders), redone when the package changed.
    A notebook that fails gets no page; the errors are returned, one line each."""
    from nbdev.config import get_config
    from nbdev.serve import proc_nbs
    cfg = get_config()
    newest = max(p.stat().st_mtime for p in cfg.lib_path.glob('*.py'))  # show_doc output comes from the package
    force = force or not PROC.exists() or PROC.stat().st_mtime < newest
    if str(cfg.config_path) not in sys.path: sys.path.insert(0, str(cfg.config_path))  # the workers': this repo's
    run = lambda **kw: proc_nbs(n_workers=min(2, os.cpu_count() or 1), skip_folder_re=r'^([_.]|workspace$)', **kw)
    saved, errors = os.environ.get('LLMPLAY_ROOT'), []
    with tempfile.TemporaryDirectory(prefix='llmplay-docs-') as root:
        os.environ['LLMPLAY_ROOT'] = root  # import cells run: keep what they touch out of any real workspace
        try: run(force=force, skip_file_re=r'^[_.]|(?<!\.ipynb)$')  # notebooks only: images are copied as they are
        except Exception:  # one failed and stopped the rest: the rest one at a time, to name each that fails
            for nb in sorted(p for p in NBS.glob('*.ipynb') if not (PROC/p.name).exists()):
                try: run(skip_file_re=rf'^(?!{re.escape(nb.name)}$)')
                except Exception as e:  # the worker's traceback is the cause: its last error line says what
                    why = re.findall(r'^(\w+(?:Error|Exception)\b.*)$', str(e.__cause__ or ''), re.M)
                    errors.append(f"{nb.name}: {str(e).splitlines()[0]} {why[-1] if why else ''}")
        finally:
            if saved is None: os.environ.pop('LLMPLAY_ROOT', None)
            else: os.environ['LLMPLAY_ROOT'] = saved
    return errors


# --- step 2: from Quarto's dialect to plain notebooks -----------------------------------------------------

_ATTR = r'(?:#[\w:.-]+|\.[\w-]+|[\w-]+=(?:"[^"]*"|\'[^\']*\'|[^\s}]+))'
_re_attrs = re.compile(r'(?<=[)\]])\{' + _ATTR + r'(?:\s+' + _ATTR + r')*\}')             # [x](url){target="_blank"}
_re_head_attrs = re.compile(r'^(#{1,6} .*?)\s*\{' + _ATTR + r'(?:\s+' + _ATTR + r')*\}\s*$', re.M)  # ## Title {#id}
_re_fence_split = re.compile(r'(^[ \t]*(?:```|~~~)[^\n]*\n[\s\S]*?^[ \t]*(?:```|~~~)[ \t]*$)', re.M)
_re_code_span = re.compile(r'((`+)[\s\S]*?(?<!`)\2(?!`))')
_re_display_math = re.compile(r'\$\$([\s\S]+?)\$\$')
_re_inline_math = re.compile(r'(?<![\\$\w])\$(?=[^\s$])([^$\n]+?)(?<=[^\s\\])\$(?![\w$])')
_re_link = re.compile(r'\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)')


def prose(md: str, fn, spans=False) -> str:
    "`md` with `fn` applied to its prose: fenced code blocks and (unless `spans`) code spans stay as they are."
    out = []
    for i, chunk in enumerate(_re_fence_split.split(md)):
        if i % 2: out.append(chunk); continue
        if spans: out.append(fn(chunk)); continue
        parts = _re_code_span.split(chunk)  # text, span, backticks, text, ...
        out.append(''.join(fn(p) if j % 3 == 0 else p for j, p in enumerate(parts) if j % 3 != 2))
    return ''.join(out)


def quarto_md(md: str) -> str:
    "Markdown without Quarto's attribute blocks."
    return prose(md, lambda t: _re_attrs.sub('', _re_head_attrs.sub(r'\1', t)))


def math_md(md: str) -> str:
    "`$...$` and `$$...$$` in prose as MathML: browsers draw it with no script and no network."
    from latex2mathml.converter import convert
    def conv(m, display):
        try: return convert(m[1].strip(), display=display).replace('\n', '')
        except Exception: return m[0]
    return prose(md, lambda t: _re_inline_math.sub(lambda m: conv(m, 'inline'),
                                                   _re_display_math.sub(lambda m: conv(m, 'block'), t)))


def text(v) -> str: return v if isinstance(v, str) else ''.join(v)


def front_matter(cell) -> dict:
    import yaml
    src = text(cell['source'])
    try: fm = yaml.safe_load(src.strip().strip('-')) if src.lstrip().startswith('---') else None
    except yaml.YAMLError: return {}
    return fm if isinstance(fm, dict) else {}


def plain_output(o: dict) -> dict:
    "An output without Quarto's attributes; a widget (it needs a live kernel) as its text or a note."
    o = dict(o)
    if (data := o.get('data')) is None: return o
    data = dict(data)
    if WIDGET in data:  # a progress bar's text stays
        t = text(data.get('text/plain', ''))
        data = ({'text/plain': t} if t.strip() and not re.match(r'^\w+\(\w+=', t) else
                {'text/html': '<p><em>An interactive widget: run this notebook in JupyterLab to use it.</em></p>'})
    if 'text/markdown' in data: data['text/markdown'] = math_md(quarto_md(text(data['text/markdown'])))
    o['data'] = data
    return o


def output_md(o: dict) -> str:
    "One output as markdown, for a folded solution."
    if o.get('output_type') == 'stream': return fence(text(o['text']))
    data = o.get('data', {})
    for mime in ('image/png', 'image/jpeg'):
        if mime in data: return f'<img alt="" src="data:{mime};base64,{text(data[mime]).strip()}">'
    if 'text/html' in data: return text(data['text/html'])
    if 'text/markdown' in data: return text(data['text/markdown'])
    if 'text/plain' in data: return fence(text(data['text/plain']))
    if o.get('output_type') == 'error': return fence('\n'.join(o.get('traceback', [])))
    return ''


def fence(code: str, lang: str = 'text') -> str:
    ticks = '`' * max([3] + [len(m) + 1 for m in re.findall(r'`{3,}', code)])
    return f'{ticks}{lang}\n{code.rstrip()}\n{ticks}'


def solution_md(src: str, outputs: list) -> str:
    "A folded exercise solution: its code and outputs inside <details>, closed until the reader opens it."
    m = re.match(r'#\s*(Solution\b[^:\n]*)', src)
    summary = html.escape(m[1].strip() if m else 'Solution')
    body = '\n\n'.join(filter(None, [fence(src, 'python'), *map(output_md, outputs)]))
    return f'<details class="solution">\n<summary>{summary}</summary>\n\n{body}\n\n</details>'


def split_at_headings(md: str) -> list[str]:
    "A markdown cell's text cut before each heading, so that every heading opens a cell (see `on_page_content`)."
    parts = re.split(r'(?m)^(?=#{1,6} )', md) if re.search(r'(?m)^#{1,6} ', md) else [md]
    out = []
    for part in parts:  # a `# comment` inside a fenced block is no heading: glue it back
        if out and (out[-1].count('```') % 2 or out[-1].count('~~~') % 2): out[-1] += part
        else: out.append(part)
    return [p for p in out if p.strip()]


def clean_markdown(c: dict) -> list[dict]:
    "A markdown cell in plain markdown, cut before each heading."
    src = text(c['source'])
    if src.strip().startswith('<!-- WARNING: THIS FILE WAS AUTOGENERATED'): return []
    cid = c.get('id', 'md')
    return [{**c, 'id': f'{cid}-{i}' if i else cid, 'source': part}
            for i, part in enumerate(split_at_headings(math_md(quarto_md(src))))]


def clean_code(c: dict) -> dict | None:
    "A code cell without its `#|` options, obeying them; an exercise's solution as a folded markdown cell."
    opts, src = cell_options(text(c['source']))
    outputs = [] if opts.get('output') == 'false' else [plain_output(o) for o in c.get('outputs', [])]
    if opts.get('include') == 'false' or not (src.strip() or outputs): return None
    md = c.get('metadata', {})
    if (md.get('jupyter') or {}).get('source_hidden'):
        return {'cell_type': 'markdown', 'id': c.get('id', ''), 'metadata': {}, 'source': solution_md(src, outputs)}
    if opts.get('echo') == 'false' or not src.strip(): md = {**md, 'transient': {'remove_source': True}}
    return {k: v for k, v in c.items() if k != 'has_sd'} | {'source': src, 'outputs': outputs, 'execution_count': None,
                                                              'metadata': md}


def clean(nb: dict) -> tuple[dict, dict]:
    "A plain notebook from a `_proc/` one, and its front matter (title, description, output-file)."
    meta, cells = {}, []
    for c in nb['cells']:
        if c['cell_type'] == 'raw' and (fm := front_matter(c)): meta.update(fm)
        elif c['cell_type'] == 'markdown': cells += clean_markdown(c)
        elif c['cell_type'] == 'code' and (code := clean_code(c)): cells.append(code)
        elif c['cell_type'] == 'raw': cells.append(c)
    title, desc = meta.get('title'), meta.get('description')
    head = '\n\n'.join(filter(None, [title and f'# {title}', desc and f'> {desc}']))
    if head: cells.insert(0, {'cell_type': 'markdown', 'id': 'page-title', 'metadata': {}, 'source': math_md(head)})
    nb = {**nb, 'cells': cells, 'metadata': {k: v for k, v in nb.get('metadata', {}).items() if k != 'widgets'}}
    return nb, meta


# --- links between pages ------------------------------------------------------------------------------

def heading_ids(nb: dict) -> set[str]:
    "The ids mkdocs-jupyter gives the headings of a notebook's prose and markdown outputs."
    from mkdocs_jupyter.utils import slugify
    mds = [text(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown']
    mds += [text(o['data']['text/markdown']) for c in nb['cells'] if c['cell_type'] == 'code'
            for o in c.get('outputs', []) if 'text/markdown' in o.get('data', {})]
    heads = [h for md in mds for h in re.findall(r'^#{1,6}\s+(.+?)\s*#*\s*$', _re_fence_split.sub('', md), re.M)]
    plain = lambda h: re.sub(r'<[^>]+>|[`*_]{1,2}(?=\S)|(?<=\S)[`*_]{1,2}', '', _re_link.sub(r'\1', h))
    return {slugify(plain(h)).replace(' ', '-') for h in heads}


def fix_links(md: str, files: dict[str, str], ids: dict[str, set], site_url: str) -> str:
    """Links to notebooks and to the hosted site lead to the built pages, with the anchors mkdocs-jupyter gives;
    a link to an API entry that has no section (nbdev links private names too) becomes plain text."""
    from mkdocs_jupyter.utils import slugify
    def sub(m):
        label, url = m[1], m[2]
        if site_url and (url + '/').startswith(site_url + '/'): url = url[len(site_url) + 1:] or 'index.html'
        path, _, frag = url.partition('#')
        page = files.get(path.removeprefix('./'))
        if not page: return m[0]
        if frag and slugify(frag) not in ids[page]: return label  # no such section: the name alone
        return f'[{label}]({page}' + (f'#{slugify(frag)}' if frag else '') + ')'
    return prose(md, lambda t: _re_link.sub(sub, t), spans=True) if '](' in md else md


def link_pages(nbs: dict[str, dict], files: dict[str, str], site_url: str):
    "Fix the links of every cleaned notebook in place (`nbs`: page file -> notebook)."
    ids = {f: heading_ids(nb) for f, nb in nbs.items()}
    fix = lambda md: fix_links(md, files, ids, site_url)
    for nb in nbs.values():
        for c in nb['cells']:
            if c['cell_type'] == 'markdown': c['source'] = fix(text(c['source']))
            for o in c.get('outputs', []):
                data = o.get('data', {})
                if 'text/markdown' in data: data['text/markdown'] = fix(text(data['text/markdown']))


# --- the pages MkDocs reads ---------------------------------------------------------------------------

def modules(lib: Path) -> list[str]:
    "The package's modules that have an API page (not the index, the entry point or nbdev's index)."
    return sorted(p.stem for p in lib.glob('*.py') if not p.stem.startswith('_'))


def stage(proc: Path, out: Path = SITE_SRC) -> tuple[list, dict]:
    "Write the pages MkDocs reads into `out`: cleaned notebooks, images, API pages; (nav, page -> notebook)."
    from nbdev.config import get_config
    cfg = get_config()
    site_url = (cfg.get('doc_host', '') + cfg.get('doc_baseurl', '')).rstrip('/')
    pages, nbs = {}, {}
    names = [name for _, name in sidebar(NBS)]  # then those the sidebar does not list: a page, as Quarto gives them
    names += [p.name for p in sorted(NBS.glob('*.ipynb')) if p.name not in names and not p.name.startswith('_')]
    for name in names:
        if not (proc/name).exists(): continue  # nbdev could not process it (said above)
        nb, meta = clean(json.loads((proc/name).read_text(encoding='utf-8')))
        stem = Path(name).stem
        page = 'index.html' if stem == 'index' else meta.get('output-file') or f'{stem}.html'
        file = Path(page).with_suffix('.ipynb').name
        title = 'Overview' if page == 'index.html' else (meta.get('title') or stem).replace('`', '')  # nav: plain text
        pages[name] = dict(file=file, page=page, source=name, nav_title=title)
        nbs[page] = nb
    files = {alias: p['page'] for name, p in pages.items() for alias in (name, Path(name).stem + '.html', p['page'])}
    link_pages(nbs, files, site_url)
    if out.exists(): shutil.rmtree(out)
    (out/'api').mkdir(parents=True)
    for p in pages.values():
        (out/p['file']).write_text(json.dumps(nbs[p['page']], ensure_ascii=False, indent=1), encoding='utf-8')
    mods, sources = modules(cfg.lib_path), {p['file']: p['source'] for p in pages.values()}
    for m in mods:
        (out/f'api/{m}.md').write_text(f'# llmplay.{m}\n\n::: llmplay.{m}\n', encoding='utf-8')
        header = (cfg.lib_path/f'{m}.py').read_text(encoding='utf-8')[:500]
        if nb := re.search(r'File to edit: \.\./nbs/(\S+\.ipynb)', header): sources[f'api/{m}.md'] = nb[1]
    if (NBS/'images').exists(): shutil.copytree(NBS/'images', out/'images')
    for asset in ('docsite.css', 'iframe-worker-shim.js'): shutil.copy2(Path(__file__).parent/asset, out/asset)
    (out/'.sources.json').write_text(json.dumps(sources), encoding='utf-8')  # for the hook below
    return nav(pages, mods), nbs


def build(out: Path = TOP/'_docs', force=False) -> list[str]:
    "Build the site into `out`; the notebooks that failed (they have no page)."
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    t0 = time.time()
    os.chdir(TOP)
    errors = process(force)
    for e in errors: warn(f'nbdev could not process {e}')
    t1 = time.time()
    site_nav, nbs = stage(PROC)
    mkdocs_build(load_config(str(TOP/'mkdocs.yml'), nav=site_nav, site_dir=str(out)))
    (out/'.nojekyll').touch()
    print(f'docsite: {len(nbs)} notebook pages in {out} ({t1 - t0:.1f}s nbdev, {time.time() - t1:.1f}s MkDocs)')
    return errors


# --- MkDocs hook (mkdocs.yml: hooks) ------------------------------------------------------------------------

_sources: dict[str, str] = {}


def on_config(config, **kw):
    f = Path(config['docs_dir'])/'.sources.json'
    _sources.clear(); _sources.update(json.loads(f.read_text(encoding='utf-8')) if f.exists() else {})


_re_cell_heading = re.compile(  # a markdown cell as mkdocs-jupyter writes it, opening with a heading
    r'(<div class="jp-Cell jp-MarkdownCell jp-Notebook-cell"[^>]*>\s*<div class="jp-Cell-inputWrapper"[^>]*>\s*'
    r'<div class="jp-Collapser[^"]*">\s*</div>\s*<div class="jp-InputArea jp-Cell-inputArea">\s*'
    r'(?:<div class="jp-InputPrompt[^"]*">\s*</div>\s*)?<div class="jp-RenderedHTMLCommon[^"]*"[^>]*>\s*)'
    r'(<h([1-6]) id="[^"]*">.*?</h\3>)', re.S)


def toc_tokens(heads: list[tuple[int, str, str]]) -> list[dict]:
    "MkDocs' table-of-contents tokens from (level, id, title) in page order."
    root = {'level': 0, 'children': []}
    stack = [root]
    for level, hid, name in heads:
        while stack[-1]['level'] >= level: stack.pop()
        tok = {'level': level, 'id': hid, 'name': name, 'children': []}
        stack[-1]['children'].append(tok); stack.append(tok)
    return root['children']


def on_page_content(html, page, config, files, **kw):
    """A notebook's page, each heading of its prose moved just before its cell: Material's search index cuts a page
    into sections at headings, and a section nested in a cell would end with the cell (every hit would be the
    page). The table of contents is made from those headings (mkdocs-jupyter's drops code from their ids)."""
    if not page.file.src_uri.endswith('.ipynb'): return html
    from mkdocs.structure.toc import get_toc
    heads = []
    def hoist(m):
        name = re.sub(r'<[^>]+>', '', re.sub(r'<a class="anchor-link".*?</a>', '', m[2])).strip()
        heads.append((int(m[3]), re.search(r'id="([^"]*)"', m[2])[1], name))
        return m[2] + m[1]
    html = _re_cell_heading.sub(hoist, html)
    page.toc = get_toc(toc_tokens(heads))
    return html.replace('<a class="anchor-link"', '<a class="headerlink"')  # Material's permalinks


def on_page_context(context, page, config, nav, **kw):
    "Each page's \"edit\" link leads to its notebook in nbs/ (an API page's: the notebook exporting the module)."
    src = _sources.get(page.file.src_uri)
    page.edit_url = config['repo_url'].rstrip('/') + '/edit/main/nbs/' + src if src and config.get('repo_url') else None
    return context


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', type=Path, default=TOP/'_docs', help='output folder (default: _docs/)')
    ap.add_argument('--force', action='store_true', help="redo nbdev's processing of every notebook (ignore _proc/)")
    a = ap.parse_args()
    if errors := build(a.out.resolve(), a.force): sys.exit(f'docsite: {len(errors)} notebook(s) failed: no page')


if __name__ == '__main__':
    main()

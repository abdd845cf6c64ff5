"""The course notebooks run top to bottom in a real JupyterLab, driven by headless Chromium.

One `jupyter lab` (from this venv) serves a COPY of nbs/*.ipynb: JupyterLab autosaves and could wipe the repo's
outputs. Each notebook is opened in its own JupyterLab workspace, run with `notebook:run-all-cells`, and its
model is read back from the page: no output may be an error, every code cell must have run. The server runs with
IN_TEST=1 (tiny settings) and each kernel gets a fresh, empty LLMPLAY_ROOT of its own (an IPython startup file
picks it from the notebook's name), so every notebook builds what it needs from nothing, as under nbdev_test.
Cells nbdev_test never runs (`#| eval: false`, the `tst_flags` cells) become raw cells in the copy: they reach the
network or are slow by design. A deliberately broken notebook, only in the copy, proves a failing cell is caught.
A screenshot of 02_tokenizer goes to screenshots/jupyterlab_02_tokenizer.png.
"""
import json, os, re, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest
from cells import skipped_by_nbdev_test
from conftest import free_port

TOP = Path(__file__).resolve().parent.parent
NBS = TOP/'nbs'
SHOTS = TOP/'screenshots'
JUPYTER = Path(sys.executable).parent/'jupyter'
TOKEN = 'llmplay-test-token'
NOTEBOOKS = sorted(p.name for p in NBS.glob('*.ipynb') if not p.name.startswith('_'))
# what a learner runs in JupyterLab: the sidebar's notebooks before its appendix (nbdev_test runs every notebook)
COURSE = re.findall(r'([\w.]+\.ipynb)', (NBS/'sidebar.yml').read_text().split('section: Appendix')[0])
RUN_TIMEOUT = 420  # seconds for one notebook's run-all
ANSI = re.compile(r'\x1b\[[0-9;]*m')
BROKEN = '_broken.ipynb'  # written into the served copy only, for test_a_failing_cell_is_caught
BROKEN_CELLS = [  # the first cell also checks what every notebook's kernel gets: IN_TEST and a fresh workspace
    "import os, pathlib\nroot = pathlib.Path(os.environ['LLMPLAY_ROOT'])\n"
    "assert os.environ['IN_TEST'] == '1' and root.name.startswith('_broken-') and not any(root.iterdir())",
    '1/0', "print('never runs')"]

# Each kernel runs this before any cell: a fresh workspace named after its notebook (JPY_SESSION_NAME).
STARTUP = '''import os, pathlib, tempfile
_nb = pathlib.Path(os.environ.get('JPY_SESSION_NAME') or 'kernel').stem
_base = pathlib.Path(os.environ['LLMPLAY_TEST_WORKSPACES']); _base.mkdir(parents=True, exist_ok=True)
os.environ['LLMPLAY_ROOT'] = tempfile.mkdtemp(prefix=_nb + '-', dir=_base)
if _nb == '07_playground' and os.environ.get('LLMPLAY_BROWSER_WS'):  # pictures of a real model (tools/run_nbs.py --screenshots)
    os.environ['LLMPLAY_ROOT'] = os.environ['LLMPLAY_BROWSER_WS']
del _nb, _base
'''
COURSE_IMAGES = os.environ.get('LLMPLAY_COURSE_IMAGES')  # also save the course's pictures there (nbs/images)


def copy_notebooks(dest: Path, flags: list[str]):
    "Copy the notebooks (and the data folders beside them) to `dest`, turning the cells nbdev_test skips into raw cells."
    dest.mkdir(parents=True)
    for d in NBS.iterdir():  # e.g. bench/: measurements a notebook plots
        if d.is_dir() and not d.name.startswith(('.', '_')): shutil.copytree(d, dest/d.name)
    for name in NOTEBOOKS:
        nb = json.loads((NBS/name).read_text())
        for c in nb['cells']:
            if c['cell_type'] == 'code' and skipped_by_nbdev_test(''.join(c['source']), flags):
                for k in ('outputs', 'execution_count'): c.pop(k, None)
                c['cell_type'] = 'raw'
        (dest/name).write_text(json.dumps(nb, indent=1))
    cells = [{'cell_type': 'code', 'id': f'c{i}', 'metadata': {}, 'execution_count': None, 'outputs': [], 'source': src}
             for i, src in enumerate(BROKEN_CELLS)]
    kernel = {'display_name': 'python3', 'language': 'python', 'name': 'python3'}
    (dest/BROKEN).write_text(json.dumps({'cells': cells, 'metadata': {'kernelspec': kernel},
                                         'nbformat': 4, 'nbformat_minor': 5}))


def tst_flags() -> list[str]:
    for line in (TOP/'settings.ini').read_text().splitlines():
        if line.split('=')[0].strip() == 'tst_flags': return line.split('=', 1)[1].split()
    return []


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    "A JupyterLab 4 server on 127.0.0.1 serving a copy of the notebooks; yields its base URL."
    tmp = tmp_path_factory.mktemp('jupyterlab')
    copy_notebooks(tmp/'nbs', tst_flags())
    conf, ipy = tmp/'jupyter_config', tmp/'ipython'
    (conf/'labconfig').mkdir(parents=True)
    (conf/'labconfig/page_config.json').write_text(json.dumps(
        {'disabledExtensions': {'@jupyterlab/apputils-extension:announcements': True}}))
    (ipy/'profile_default/startup').mkdir(parents=True)
    (ipy/'profile_default/startup/00-llmplay-workspace.py').write_text(STARTUP)
    (tmp/'tmp').mkdir()
    env = {**os.environ, 'IN_TEST': '1', 'LLMPLAY_ROOT': str(tmp/'workspaces/shared'),
           'LLMPLAY_TEST_WORKSPACES': str(tmp/'workspaces'), 'IPYTHONDIR': str(ipy),
           'JUPYTER_CONFIG_DIR': str(conf), 'JUPYTER_RUNTIME_DIR': str(tmp/'runtime'), 'TMPDIR': str(tmp/'tmp')}
    env.pop('JUPYTER_PATH', None)
    port = free_port()
    base = f'http://127.0.0.1:{port}'
    log = open(tmp/'jupyterlab.log', 'w+')
    proc = subprocess.Popen(
        [str(JUPYTER), 'lab', '--no-browser', '--allow-root', '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={port}',
         '--ServerApp.port_retries=0', f'--IdentityProvider.token={TOKEN}', f'--ServerApp.root_dir={tmp/"nbs"}',
         '--LabApp.expose_app_in_browser=True', f'--LabApp.workspaces_dir={tmp/"lab_workspaces"}',
         f'--LabApp.user_settings_dir={tmp/"lab_settings"}',
         '--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate'],
        cwd=tmp/'nbs', env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None, f'jupyter lab exited ({proc.returncode}):\n{log_text(log)}'
            try:
                with urllib.request.urlopen(f'{base}/api/status?token={TOKEN}', timeout=2) as r:
                    if r.status == 200: break
            except OSError: pass
            assert time.time() < deadline, f'jupyter lab did not answer in 60 s:\n{log_text(log)}'
            time.sleep(0.5)
        yield base
    finally:
        stop(proc)
        print(log_text(log)[-30000:])
        log.close()


def log_text(log) -> str:
    log.flush(); log.seek(0)
    return log.read()


def stop(proc):
    "Stop the server: SIGTERM to its process group (it shuts its kernels down), SIGKILL if it hangs."
    if proc.poll() is not None: return
    os.killpg(proc.pid, signal.SIGTERM)
    try: proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def shutdown_kernels(base):
    "Delete every session (and so its kernel): the next notebook gets the CPU to itself."
    req = lambda path, method='GET': urllib.request.Request(f'{base}{path}?token={TOKEN}', method=method)
    with urllib.request.urlopen(req('/api/sessions'), timeout=10) as r: sessions = json.load(r)
    for s in sessions: urllib.request.urlopen(req(f'/api/sessions/{s["id"]}', 'DELETE'), timeout=30).close()


OPENED = '''name => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return !!(w && w.context && w.context.path === name && w.sessionContext && w.content && w.content.model);
}'''

KERNEL_IDLE = '''async () => {
  const w = window.jupyterapp.shell.currentWidget;
  await w.context.ready; await w.sessionContext.ready;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  if (!k) return false;
  await k.info;  // the kernel answered kernel_info: it is up and talking to us
  return k.status === 'idle' && k.connectionStatus === 'connected';
}'''

RUN_ALL = '''() => {
  window.__runAll = 'running';
  window.jupyterapp.commands.execute('notebook:run-all-cells')
    .then(() => { window.__runAll = 'done'; }, e => { window.__runAll = 'failed: ' + e; });
}'''

# The notebook's state, read from its model: kernel status, cells still running, and per code cell its
# execution count and its error outputs (and any stderr with a traceback in it).
STATE = '''() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  const cells = [];
  w.content.widgets.forEach((c, i) => {
    if (c.model.type !== 'code') return;
    const j = c.model.toJSON();
    const src = Array.isArray(j.source) ? j.source.join('') : j.source;
    const errors = [];
    for (const o of j.outputs || []) {
      if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue + '\\n' + (o.traceback || []).join('\\n'));
      const t = Array.isArray(o.text) ? o.text.join('') : (o.text || '');
      if (o.output_type === 'stream' && o.name === 'stderr' && /Traceback \\(most recent call last\\)/.test(t))
        errors.push('stderr: ' + t);
    }
    cells.push({index: i, count: j.execution_count, empty: !src.trim(), running: c.model.executionState === 'running',
                head: src.split('\\n').slice(0, 3).join('\\n'), errors});
  });
  return {kernel: k ? k.status : 'none', runAll: window.__runAll || null, cells,
          dialog: Array.from(document.querySelectorAll('.jp-Dialog')).map(d => d.innerText).join('\\n---\\n')};
}'''


def describe(failures) -> str:
    return '\n\n'.join(f'cell {c["index"]}:\n{c["head"]}\n-> {ANSI.sub("", e)}' for c in failures for e in c['errors'])


def run_all(browser, lab, name, screenshot=None) -> dict:
    "Open `name` in JupyterLab, run all cells, wait until they ran or one failed; the notebook's final state."
    page = browser.new_context(viewport={'width': 1400, 'height': 1000}).new_page()
    # offline: nothing but our server (no CDN, no news feed)
    page.route('**/*', lambda route: route.continue_() if route.request.url.startswith(lab) else route.abort())
    page_errors = []
    page.on('pageerror', lambda e: page_errors.append(str(e)))
    t0 = time.time()
    try:
        page.goto(f'{lab}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={TOKEN}')
        page.wait_for_function(OPENED, arg=name, timeout=90_000)
        page.wait_for_function(KERNEL_IDLE, timeout=90_000, polling=500)
        t_ready = time.time()
        page.evaluate(RUN_ALL)
        deadline = t_ready + RUN_TIMEOUT
        while True:
            state = page.evaluate(STATE)
            assert not state['dialog'], f'{name}: JupyterLab shows a dialog:\n{state["dialog"]}'
            idle = state['kernel'] == 'idle' and not any(c['running'] for c in state['cells'])
            if idle and (state['runAll'] == 'done' or any(c['errors'] for c in state['cells'])): break
            # 'unknown' is transient (the websocket connecting); a crash shows as 'autorestarting' or 'dead'
            assert state['kernel'] not in ('dead', 'autorestarting'), f'{name}: the kernel is {state["kernel"]}'
            assert time.time() < deadline, (
                f'{name}: run-all did not finish in {RUN_TIMEOUT} s; kernel {state["kernel"]}, '
                f'cells not run: {not_run(state)}')
            time.sleep(1)
        print(f'{name}: kernel ready in {t_ready - t0:.1f}s, run-all {time.time() - t_ready:.1f}s')
        if screenshot:
            show_outputs(page)
            page.screenshot(path=str(screenshot))
        if name == '07_playground.ipynb': widget_picture(page)
        return {**state, 'page_errors': page_errors}
    finally:
        page.context.close()
        shutdown_kernels(lab)


def not_run(state) -> list[int]:
    return [c['index'] for c in state['cells'] if c['count'] is None and not c['empty']]


@pytest.mark.parametrize('name', COURSE, ids=lambda n: n.removesuffix('.ipynb'))
def test_notebook_runs_in_jupyterlab(name, lab, browser):
    shot = None
    if name == '02_tokenizer.ipynb':
        SHOTS.mkdir(exist_ok=True)
        shot = SHOTS/'jupyterlab_02_tokenizer.png'
    state = run_all(browser, lab, name, shot)
    failures = [c for c in state['cells'] if c['errors']]
    assert not failures, f'{name} raised in JupyterLab:\n{describe(failures)}'
    assert not not_run(state), f'{name}: code cells without an execution count after run-all: {not_run(state)}'
    assert state['runAll'] == 'done', f'{name}: notebook:run-all-cells ended with {state["runAll"]}'
    assert not state['page_errors'], f'{name}: errors in the page: {state["page_errors"]}'


def test_a_failing_cell_is_caught(lab, browser):
    "The check itself: a notebook (only in the served copy) that raises in its second cell fails it."
    state = run_all(browser, lab, BROKEN)
    counts = [c['count'] for c in state['cells']]
    assert counts[:2] == [1, 2] and counts[2] is None, counts  # run-all stops at the error
    [bad] = [c for c in state['cells'] if c['errors']]
    assert bad['index'] == 1 and 'ZeroDivisionError' in describe([bad])


def show_outputs(page):
    "Collapse the file browser and scroll to the first plot (else the first rich output), for the screenshot."
    page.evaluate('''async () => {
      const app = window.jupyterapp;
      if (app.shell.leftCollapsed === false) app.shell.collapseLeft();
      const nb = app.shell.currentWidget.content;
      const outs = c => c.model.type === 'code' ? c.model.toJSON().outputs : [];
      let i = nb.widgets.findIndex(c => outs(c).some(o => o.data && o.data['image/png']));
      if (i < 0) i = nb.widgets.findIndex(c => outs(c).some(o => o.output_type !== 'stream'));
      if (i >= 0) { nb.activeCellIndex = i; await nb.scrollToItem(i, 'start'); }
    }''')
    page.wait_for_timeout(1500)


def widget_picture(page):
    "A picture of the sampler widget as a learner sees it (screenshots/widget_sampler.png, and the course's images)."
    box = page.locator('.jp-OutputArea-output .widget-vbox').first
    box.scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    SHOTS.mkdir(exist_ok=True)
    box.screenshot(path=str(SHOTS/'widget_sampler.png'))
    assert (SHOTS/'widget_sampler.png').stat().st_size > 5_000
    if COURSE_IMAGES: shutil.copy(SHOTS/'widget_sampler.png', Path(COURSE_IMAGES)/'widget_sampler.png')

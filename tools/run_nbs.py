#!/usr/bin/env python3
"""Re-execute the course's notebooks and save their outputs in place: the committed outputs are one run's.

    python tools/run_nbs.py                      # every notebook, in sidebar.yml order, in ONE fresh workspace
    python tools/run_nbs.py --screenshots        # then the pictures of the chat and the widget, into nbs/images/
    python tools/run_nbs.py 03_model 04_training # some of them (names with or without .ipynb)

Each notebook runs in a fresh Jupyter kernel (nbclient), from nbs/ as in JupyterLab, with the repository's
package first on the path. Cells marked `#| eval: false` are skipped, as under nbdev_test. Where the
notebooks' workspace is ($LLMPLAY_ROOT):
    (default)        one fresh workspace, /tmp/llmplay-course, for all of them: the course is one story, each
                     notebook continuing from what the earlier ones built, as a learner's run would
    --root DIR       that workspace instead
    --each           a fresh temporary folder per notebook
    --keep-env       whatever $LLMPLAY_ROOT already says (or the notebooks' own default, nbs/workspace/)
By default the notebooks run at full size; --test sets IN_TEST=1 as nbdev_test does (tiny settings, fast).
A notebook with an error is not saved. Saved notebooks are cleaned with nbdev_clean (outputs kept).
"""
from __future__ import annotations
import argparse, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cells import cell_options  # noqa: E402

TOP = Path(__file__).resolve().parent.parent
NBS = TOP/'nbs'
SKIP_TAG = 'skip-execution'  # nbclient's default skip_cells_with_tag


def eval_false(src: str) -> bool:
    "Whether a cell's `#|` options say `eval: false`."
    return cell_options(src)[0].get('eval') == 'false'


def notebooks(names: list[str]) -> list[Path]:
    "The notebooks named, or every notebook in sidebar.yml order (then any the sidebar does not list)."
    if names: return [NBS/(n if n.endswith('.ipynb') else n + '.ipynb') for n in names]
    sys.path.insert(0, str(TOP/'tools'))
    from docsite import sidebar
    listed = [NBS/name for _, name in sidebar(NBS)]
    return listed + [p for p in sorted(NBS.glob('*.ipynb')) if p not in listed and not p.name.startswith('_')]


def run(nb_path: Path, root: str | None, timeout: int) -> float:
    "Execute `nb_path` in a fresh kernel and save it with its outputs; returns the seconds it took."
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(nb_path, as_version=4)
    skipped = []
    for cell in nb.cells:
        if cell.cell_type == 'code' and eval_false(cell.source):
            tags = cell.metadata.setdefault('tags', [])
            if SKIP_TAG not in tags: tags.append(SKIP_TAG); skipped.append(cell)
    env = os.environ.copy()
    if root is not None: env['LLMPLAY_ROOT'] = root
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(TOP), env.get('PYTHONPATH')]))
    env['MPLBACKEND'] = 'module://matplotlib_inline.backend_inline'  # plots become outputs, whatever the shell says
    t = time.time()
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(NBS)}},
                            extra_arguments=['--log-level=ERROR'])  # not ipykernel's note on local TCP
    saved_env = os.environ.copy()
    os.environ.clear(); os.environ.update(env)  # the kernel inherits this process's environment
    try: client.execute()
    finally: os.environ.clear(); os.environ.update(saved_env)
    for cell in skipped:
        cell.metadata.tags.remove(SKIP_TAG)
        if not cell.metadata.tags: del cell.metadata['tags']
    tmp = nb_path.with_suffix('.ipynb.tmp')
    nbformat.write(nb, tmp)
    os.replace(tmp, nb_path)
    return time.time() - t


COURSE = Path(tempfile.gettempdir())/'llmplay-course'


def screenshots(root: Path):
    "The browser and JupyterLab tests that picture the chat and the widget, on the workspace `root`, saving into nbs/images."
    images = NBS/'images'
    images.mkdir(exist_ok=True)
    env = {**os.environ, 'LLMPLAY_BROWSER_WS': str(root), 'LLMPLAY_COURSE_IMAGES': str(images)}
    cmd = [sys.executable, '-m', 'pytest', '-q', 'tests/test_browser.py', 'tests/test_jupyterlab.py', '-k',
           'test_chat or test_stop or test_not_ready or 07_playground']
    print('run_nbs: pictures:', ' '.join(cmd[3:]), flush=True)
    subprocess.run(cmd, cwd=TOP, env=env, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('names', nargs='*', help='notebooks to run (default: all, in sidebar order)')
    where = ap.add_mutually_exclusive_group()
    where.add_argument('--root', help=f'one workspace for every notebook (default: a fresh {COURSE})')
    where.add_argument('--each', action='store_true', help='a fresh temporary workspace for each notebook')
    where.add_argument('--keep-env', action='store_true', help='keep $LLMPLAY_ROOT as it is')
    ap.add_argument('--test', action='store_true', help='set IN_TEST=1, as nbdev_test does (tiny settings)')
    ap.add_argument('--screenshots', action='store_true', help='after the notebooks, take the course pictures (nbs/images/)')
    ap.add_argument('--timeout', type=int, default=1800, help='seconds one cell may take (default 1800)')
    a = ap.parse_args()
    if a.test: os.environ['IN_TEST'] = '1'
    else: os.environ.pop('IN_TEST', None)
    root = Path(a.root).resolve() if a.root else COURSE
    if not (a.root or a.each or a.keep_env or a.names):  # the whole course: from an empty workspace
        if root.exists(): shutil.rmtree(root)
        root.mkdir(parents=True)
    failed = []
    for nb in notebooks(a.names):
        if not nb.exists(): print(f'run_nbs: {nb.name} does not exist', file=sys.stderr); failed.append(nb); continue
        print(f'run_nbs: {nb.name} ...', flush=True)
        try:
            if a.keep_env: secs = run(nb, None, a.timeout)
            elif a.each:
                with tempfile.TemporaryDirectory(prefix='llmplay-run-') as tmp: secs = run(nb, tmp, a.timeout)
            else: secs = run(nb, str(root), a.timeout)
        except Exception as e:  # nbclient's CellExecutionError holds the traceback
            print(f'run_nbs: {nb.name} FAILED, left unchanged:\n{e}', file=sys.stderr, flush=True)
            failed.append(nb); continue
        subprocess.run([str(Path(sys.executable).parent/'nbdev_clean'), '--fname', str(nb)], cwd=TOP, check=True)
        print(f'run_nbs: {nb.name} saved with its outputs ({secs:.1f}s)', flush=True)
    if failed: sys.exit(f'run_nbs: failed: {", ".join(p.name for p in failed)}')
    if a.screenshots: screenshots(root)


if __name__ == '__main__':
    main()

"""The package as a user installs it: build the wheel, install it into a fresh venv, run it to state 3.

The wheel is built from a copy of the repository (a stale build/ folder cannot leak old modules into it),
without build isolation (setuptools comes from the dev venv). The fresh venv gets the local CPU torch
wheel first and a constraint that pins it, so pip never fetches another torch (or CUDA packages).
"""
import json, os, re, shutil, subprocess, sys, time, venv, zipfile
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
TORCH = os.environ.get('LLMPLAY_TORCH', 'torch==2.13.0')  # as dev.py: this machine's local CPU wheel
HEAVY = ['transformers', 'streamlit', 'jupyter', 'jupyter_core', 'jupyterlab', 'notebook', 'IPython', 'ipykernel', 'ipywidgets',
         'matplotlib', 'nbdev']
IMPORT_CHECK = f'''
import json, sys, time
t = time.perf_counter()
import llmplay, llmplay.pipeline
secs = time.perf_counter() - t
print(json.dumps({{"secs": secs, "file": llmplay.__file__, "version": llmplay.__version__,
                  "heavy": [m for m in {HEAVY!r} if m in sys.modules], "torch": "torch" in sys.modules}}))
'''


def sh(*cmd, timeout=600, **kw):
    "Run `cmd`; fail the test with its output if it fails."
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, f'{" ".join(map(str, cmd))} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return r.stdout


def user_env(bin_dir=None) -> dict:
    "The environment of a user's shell: no test flags, no repo on the path, the venv's bin first."
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'PYTHONPATH', 'VIRTUAL_ENV', 'LLMPLAY_ROOT')}
    if bin_dir: env['PATH'] = f'{bin_dir}{os.pathsep}{env.get("PATH", "")}'
    return env


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp('src')/'llmplay'
    anywhere = shutil.ignore_patterns('.git', '__pycache__', '*.egg-info', '.pytest_cache', '.ipynb_checkpoints')
    top_only = shutil.ignore_patterns('.venv', 'venv', '_docs', '_proc', 'build', 'dist', 'screenshots', 'data',
                                      'models', 'workspace*')  # the repo's own clutter, not llmplay/data.py
    shutil.copytree(TOP, src, ignore=lambda d, names: anywhere(d, names) | (top_only(d, names) if Path(d) == TOP else set()))
    out = tmp_path_factory.mktemp('dist')
    t = time.time()
    sh(sys.executable, '-m', 'build', '--wheel', '--no-isolation', '--outdir', out, src, cwd=src, timeout=300)
    wheels = list(out.glob('llmplay-*.whl'))
    assert len(wheels) == 1, wheels
    print(f'built {wheels[0].name} in {time.time() - t:.1f}s')
    return wheels[0]


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    pkg = {n for n in names if n.startswith('llmplay/')}
    # everything the package folder holds (modules, and the app's files once they exist), nothing else
    wanted = {f'llmplay/{p.relative_to(TOP/"llmplay").as_posix()}' for p in (TOP/'llmplay').rglob('*')
              if p.is_file() and '__pycache__' not in p.parts and p.suffix not in ('.pyc', '.pyo')}
    assert wanted - pkg == set(), f'missing from the wheel: {sorted(wanted - pkg)}'
    assert {'llmplay/__init__.py', 'llmplay/cli.py', 'llmplay/__main__.py', 'llmplay/chat.css', 'llmplay/_modidx.py'} <= pkg
    assert not [n for n in names if n.endswith('.ipynb') or n.startswith(('nbs/', 'tests/', 'tools/'))], names
    info = next(n for n in names if n.endswith('.dist-info/entry_points.txt'))
    eps = zipfile.ZipFile(wheel).read(info).decode()
    assert re.search(r'^llmplay\s*=\s*llmplay\.__main__:main\s*$', eps, re.M), eps
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith('.dist-info/METADATA'))).decode()
    requires = [l.split(':', 1)[1].strip() for l in meta.splitlines() if l.startswith('Requires-Dist:')]
    core = [r for r in requires if 'extra ==' not in r]
    assert any(r.startswith('torch') for r in core) and not any('nvidia' in r for r in requires), requires
    assert not any(r.split()[0].startswith(('streamlit', 'matplotlib', 'jupyter', 'nbdev')) for r in core), core
    print(f'{wheel.name}: {len(pkg)} package files; core requirements: {", ".join(core)}')


def test_core_imports_no_extra_where_everything_is_installed(tmp_path):
    "In the dev venv every extra is installed, so this shows the package's core does not import them itself."
    out = sh(sys.executable, '-c', IMPORT_CHECK, cwd=tmp_path, env={**user_env(), 'PYTHONPATH': str(TOP)})
    r = json.loads(out.splitlines()[-1])
    print(f'import llmplay, llmplay.pipeline (dev venv): {r["secs"] * 1000:.0f} ms')
    assert r['heavy'] == [], f'importing llmplay imported {r["heavy"]}'
    # torch is imported: the stages import what they use at the top (a check of the model file needs torch anyway)


def test_installed_wheel_runs_to_state_3(wheel, tmp_path):
    t0 = time.time()
    env_dir = tmp_path/'venv'
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir/('Scripts' if os.name == 'nt' else 'bin')
    py, env = bin_dir/'python', user_env(bin_dir)
    pins = tmp_path/'constraints.txt'
    pins.write_text(TORCH + '\n')
    pip = [py, '-m', 'pip', 'install', '--disable-pip-version-check', '-q']
    sh(*pip, TORCH, env=env, cwd=tmp_path)  # the local CPU wheel first
    sh(*pip, '-c', pins, wheel, env=env, cwd=tmp_path)  # then llmplay and its core requirements
    t_install = time.time() - t0
    assert sh(py, '-c', 'import torch; print(torch.__version__)', env=env, cwd=tmp_path).strip().startswith(
        TORCH.split('==')[-1]), 'pip replaced the local torch'

    t = time.time()
    helptext = sh(bin_dir/'llmplay', '--help', env=env, cwd=tmp_path)
    t_help = time.time() - t
    assert 'status' in helptext and 'run' in helptext

    r = json.loads(sh(py, '-c', IMPORT_CHECK, env=env, cwd=tmp_path).splitlines()[-1])
    assert Path(r['file']).is_relative_to(env_dir), f'imported {r["file"]}, not the installed package'
    assert r['heavy'] == [], r
    print(f'import llmplay, llmplay.pipeline (fresh venv): {r["secs"] * 1000:.0f} ms; `llmplay --help`: {t_help:.2f}s')

    recorded = tmp_path/'recorded'  # the offline corpus ships in the wheel
    sh(bin_dir/'llmplay', 'collect', '--source', 'wikipedia2016', '--max-articles', '3', '--root', recorded, env=env,
       cwd=tmp_path)
    meta = json.loads((recorded/'data/raw/corpus_meta.json').read_text())
    assert len(meta['articles']) == 3 and meta['license'].startswith('CC BY-SA 3.0'), meta

    root = tmp_path/'workspace'
    t1 = time.time()
    sh(bin_dir/'llmplay', 'run', '--preset', 'tiny', '--source', 'sample', '--root', root, env=env, cwd=tmp_path)
    st = json.loads(sh(bin_dir/'llmplay', 'status', '--json', '--root', root, env=env, cwd=tmp_path))
    assert st['state'] == 3, st
    text = sh(bin_dir/'llmplay', 'generate', 'The', '--root', root, '--max-new-tokens', '20', '--seed', '1',
              env=env, cwd=tmp_path)
    assert text.strip(), 'generate printed nothing'
    print(f'fresh venv + install {t_install:.0f}s, `llmplay run --preset tiny` to state 3 in {time.time() - t1:.0f}s')

"""Set-up: dev.py's choice of torch on each kind of machine (nothing installed), and extras that match what runs."""
import ast, importlib.util, json, runpy, sys, time
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest
import setuptools
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

TOP = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location('dev', TOP/'dev.py')
dev = importlib.util.module_from_spec(spec); spec.loader.exec_module(dev)
CPU = ['torch==2.13.0', '--index-url', 'https://download.pytorch.org/whl/cpu']


# --- torch: the build that fits the machine ------------------------------------------------------------------

@pytest.mark.parametrize('system, gpu, env, args', [
    ('Linux', False, {}, CPU),                                   # no GPU: PyTorch's CPU wheels, no CUDA libraries
    ('Linux', True, {}, ['torch==2.13.0']),                      # an NVIDIA GPU: the default index's CUDA build
    ('Darwin', False, {}, ['torch==2.13.0']),                    # macOS and Windows wheels are CPU builds
    ('Windows', False, {}, ['torch==2.13.0']),
    ('Linux', False, {'LLMPLAY_TORCH': 'torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126'},
     ['torch==2.13.0', '--index-url', 'https://download.pytorch.org/whl/cu126']),  # the override decides
    ('Darwin', True, {'LLMPLAY_TORCH': 'torch'}, ['torch']),
])
def test_torch_choice(system, gpu, env, args):
    assert dev.torch_args(system, gpu, env) == args


@pytest.fixture
def fake_pip(tmp_path):
    "A stand-in for `python -m pip install` that records its arguments and fails for PyTorch's index."
    log = tmp_path/'calls.jsonl'
    stub = tmp_path/'pip_stub.py'
    stub.write_text(f'import json, sys\nopen({str(log)!r}, "a").write(json.dumps(sys.argv[1:]) + "\\n")\n'
                    f'sys.exit(1 if {dev.CPU_INDEX!r} in sys.argv else 0)\n')
    return [sys.executable, str(stub), 'install'], lambda: [json.loads(l) for l in log.read_text().splitlines()]


def test_torch_falls_back_to_the_default_index(fake_pip, capsys):
    "PyTorch's index answers but pip fails there (or it does not answer): the plain wheel, and a note saying so."
    pip, calls = fake_pip
    t = time.time()
    dev.install_torch(pip, CPU, env={}, reachable=lambda url: True)
    assert calls() == [['install', *CPU, '--timeout', '5', '--retries', '0'], ['install', 'torch==2.13.0']]
    assert 'from the default index instead' in capsys.readouterr().out
    dev.install_torch(pip, CPU, env={}, reachable=lambda url: False)  # unreachable: pip is not even asked
    assert calls()[2:] == [['install', 'torch==2.13.0']] and 'cannot be reached' in capsys.readouterr().out
    dev.install_torch(pip, ['torch==2.13.0'], env={}, reachable=lambda url: pytest.fail('no index to check'))
    assert calls()[3:] == [['install', 'torch==2.13.0']]
    assert time.time() - t < 10


def test_torch_override_is_not_second_guessed(fake_pip):
    "With LLMPLAY_TORCH, its arguments are used as they are, and a failure stops the set-up."
    pip, calls = fake_pip
    with pytest.raises(SystemExit):
        dev.install_torch(pip, CPU, env={'LLMPLAY_TORCH': ' '.join(CPU)}, reachable=lambda url: True)
    assert calls() == [['install', *CPU]]


def test_reachable_is_quick():
    "A closed port answers at once; the check never waits longer than its timeout."
    t = time.time()
    assert not dev.reachable('http://127.0.0.1:9/', timeout=2)
    assert not dev.reachable('http://10.255.255.1/', timeout=1)  # a black hole: the timeout decides
    assert time.time() - t < 5


# --- extras: everything the notebooks import ---------------------------------------------------------------------

def extras():
    "install_requires and extras_require as setup.py builds them from settings.ini."
    got = {}
    saved = setuptools.setup
    setuptools.setup = lambda **kw: got.update(kw)
    try: runpy.run_path(str(TOP/'setup.py'), run_name='setup')
    finally: setuptools.setup = saved
    return got['install_requires'], got['extras_require']


def notebook_imports() -> dict[str, set[str]]:
    "Top-level name of every absolute import in the notebooks' code cells -> the notebooks importing it."
    out = {}
    for nb in sorted((TOP/'nbs').glob('*.ipynb')):
        for c in json.loads(nb.read_text(encoding='utf-8'))['cells']:
            if c['cell_type'] != 'code': continue
            src = ''.join(c['source'])
            src = '\n'.join('' if l.lstrip().startswith(('%', '!')) else l for l in src.splitlines())  # magics
            for n in ast.walk(ast.parse(src, f'{nb.name}')):
                names = ([a.name for a in n.names] if isinstance(n, ast.Import) else
                         [n.module] if isinstance(n, ast.ImportFrom) and not n.level and n.module else [])
                for name in names: out.setdefault(name.split('.')[0], set()).add(nb.name)
    return out


def closure(reqs: list[str]) -> set[str]:
    "The distributions `reqs` install, with their dependencies as installed here (and those of the extras asked for)."
    todo, seen = [Requirement(r) for r in reqs], set()
    while todo:
        r = todo.pop()
        if canonicalize_name(r.name) in seen: continue
        seen.add(canonicalize_name(r.name))
        try: deps = [Requirement(d) for d in requires(r.name) or []]
        except PackageNotFoundError: continue
        todo += [d for d in deps if not d.marker or any(d.marker.evaluate({'extra': e}) for e in ('', *r.extras))]
    return seen


def test_course_extra_covers_every_notebook_import():
    """`pip install llmplay[course]` installs every package a notebook imports (the package's own requirements
    count): a learner's run of the whole course never stops at an import."""
    base, ex = extras()
    covered = closure(base + ex['course'])
    dists = packages_distributions()
    missing = []
    for name, nbs in sorted(notebook_imports().items()):
        if name in sys.stdlib_module_names or name in ('llmplay', '__future__'): continue
        owners = {canonicalize_name(d) for d in dists.get(name, [])}
        if not owners: missing.append(f'{name} ({", ".join(sorted(nbs))}): not installed here, so no extra has it')
        elif not owners & covered: missing.append(f'{name} ({", ".join(sorted(nbs))}): from {", ".join(owners)}')
    assert not missing, 'imports the course extra does not install (add to course_requirements):\n' + '\n'.join(missing)
    assert 'transformers' in notebook_imports()  # 07_playground's last section: the reason for this test


def test_dev_is_course_plus_the_tools():
    base, ex = extras()
    assert set(ex['course']) <= set(ex['dev']) and set(ex['docs']) <= set(ex['dev'])
    names = {canonicalize_name(Requirement(r).name) for r in ex['dev']}
    assert {'pytest', 'playwright', 'mkdocs-material', 'mkdocs-jupyter', 'nbdev'} <= names
    assert not {canonicalize_name(Requirement(r).name) for r in base} & {'pytest', 'mkdocs'}

#!/usr/bin/env python3
"""Set up and run llmplay on a fresh machine with only Python: `python3 dev.py run | test | docs`.

Creates `.venv/` (once; again when settings.ini or setup.py change), installs the CPU build of torch
first so pip never fetches CUDA packages, installs llmplay in editable mode, then runs the task.
"""
import argparse, hashlib, os, subprocess, sys, venv
from pathlib import Path

TOP = Path(__file__).resolve().parent
VENV = Path(os.environ.get('LLMPLAY_VENV', TOP/'.venv'))
BIN = VENV/('Scripts' if os.name == 'nt' else 'bin')
TORCH = os.environ.get('LLMPLAY_TORCH', 'torch==2.13.0')  # this machine's local CPU wheel


def sh(*cmd, **kw):
    "Run `cmd`, echoing it; exit with its code if it fails."
    print('+', ' '.join(map(str, cmd)), flush=True)
    r = subprocess.run([str(c) for c in cmd], **kw)
    if r.returncode: sys.exit(r.returncode)


def ensure_venv(extra):
    "Create the venv and install llmplay[extra] unless that install is already up to date."
    stamp = VENV/f'.llmplay-{extra}'
    key = hashlib.sha256(b''.join((TOP/f).read_bytes() for f in ['settings.ini', 'setup.py'])).hexdigest()
    if stamp.exists() and stamp.read_text() == key: return
    if not (BIN/'python').exists(): venv.create(VENV, with_pip=True)
    pip = [BIN/'python', '-m', 'pip', 'install', '--disable-pip-version-check']
    sh(*pip, TORCH)  # first, so that later requirements (torch>=2.1) are already met
    sh(*pip, '-e', f'{TOP}[{extra}]')
    stamp.write_text(key)


def in_sync():
    "Run nbdev_export and fail if it changed the package: notebooks are the source."
    lib = TOP/'llmplay'
    before = {p: p.read_bytes() for p in lib.glob('*.py')}
    sh(BIN/'nbdev_export', cwd=TOP)
    after = {p: p.read_bytes() for p in lib.glob('*.py')}
    changed = sorted(str(p.relative_to(TOP)) for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    if changed:
        sys.exit('The notebooks and the package disagreed; nbdev_export rewrote: ' + ', '.join(changed) +
                 '\nCommit the exported files (edit nbs/*.ipynb, never llmplay/*.py).')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('task', choices=['run', 'test', 'docs', 'setup'])
    ap.add_argument('args', nargs=argparse.REMAINDER, help='passed on to `llmplay run` or pytest')
    a = ap.parse_args()
    if a.args[:1] == ['--']: a.args = a.args[1:]
    env = {**os.environ, 'PATH': f'{BIN}{os.pathsep}{os.environ.get("PATH", "")}', 'VIRTUAL_ENV': str(VENV)}
    if a.task == 'run':
        ensure_venv('course')  # the package, the chat and JupyterLab: all a learner needs
        sh(BIN/'llmplay', 'run', *a.args, cwd=TOP, env=env)
    elif a.task == 'setup':
        ensure_venv('dev')
    elif a.task == 'test':
        ensure_venv('dev')
        in_sync()
        sh(BIN/'python', '-m', 'pytest', *(a.args or ['-v', '-rfE', '--durations=15', 'tests']), cwd=TOP, env=env)
    elif a.task == 'docs':
        ensure_venv('dev')
        sh(BIN/'python', TOP/'tools/build_docs.py', *a.args, cwd=TOP, env=env)


if __name__ == '__main__':
    main()

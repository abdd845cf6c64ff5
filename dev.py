#!/usr/bin/env python3
"""Set up and run llmplay on a fresh machine with only Python: `python3 dev.py run | test | docs`.

Creates `.venv/` (once; again when settings.ini, setup.py or the choice of torch change), installs torch first (the
build that fits the machine, see `torch_args`), installs llmplay in editable mode, then runs the task.
"""
import argparse, hashlib, os, platform, shlex, shutil, subprocess, sys, threading, urllib.request, venv
from pathlib import Path

TOP = Path(__file__).resolve().parent
VENV = Path(os.environ.get('LLMPLAY_VENV', TOP/'.venv'))
BIN = VENV/('Scripts' if os.name == 'nt' else 'bin')
TORCH = 'torch==2.13.0'
CPU_INDEX = 'https://download.pytorch.org/whl/cpu'  # PyTorch's own index of CPU-only wheels


def sh(*cmd, **kw):
    "Run `cmd`, echoing it; exit with its code if it fails."
    print('+', ' '.join(map(str, cmd)), flush=True)
    r = subprocess.run([str(c) for c in cmd], **kw)
    if r.returncode: sys.exit(r.returncode)


def has_nvidia_gpu() -> bool:
    "Whether the machine has an NVIDIA driver: then the default index's CUDA build of torch is the one to use."
    return bool(shutil.which('nvidia-smi')) or Path('/proc/driver/nvidia').exists()


def torch_args(system: str, has_gpu: bool, env) -> list[str]:
    """pip's arguments for torch on a machine (`system` as `platform.system()` names it). `$LLMPLAY_TORCH` decides
    when set; on Linux without an NVIDIA GPU, PyTorch's CPU index, because the default index's Linux wheel is the
    CUDA build with gigabytes of NVIDIA libraries; elsewhere the ordinary wheel (CPU builds on macOS and Windows)."""
    if env.get('LLMPLAY_TORCH'): return shlex.split(env['LLMPLAY_TORCH'])
    if system == 'Linux' and not has_gpu: return [TORCH, '--index-url', CPU_INDEX]
    return [TORCH]


def reachable(url: str, timeout=5.0) -> bool:
    "Whether `url` answers within `timeout` seconds, name lookup included."
    ok = []
    def probe():
        try: urllib.request.urlopen(urllib.request.Request(url, method='HEAD'), timeout=timeout).close(); ok.append(1)
        except Exception: pass
    t = threading.Thread(target=probe, daemon=True)
    t.start(); t.join(timeout)
    return bool(ok)


def install_torch(pip: list, args: list[str], env=os.environ, reachable=reachable):
    """Install torch with `args`. When they are our choice of PyTorch's CPU index and that index cannot be reached
    (or pip fails there), say so and install from the default index instead."""
    if env.get('LLMPLAY_TORCH') or CPU_INDEX not in args: return sh(*pip, *args)
    if reachable(CPU_INDEX):
        print('+', *pip, *args, flush=True)
        if subprocess.run([str(c) for c in [*pip, *args, '--timeout', '5', '--retries', '0']]).returncode == 0: return
        why = 'pip could not install it from there'
    else: why = 'it cannot be reached'
    print(f"dev.py: PyTorch's CPU index ({CPU_INDEX}): {why}. Installing {TORCH} from the default index instead "
          '(on Linux that is the CUDA build, unless your index has a CPU one); LLMPLAY_TORCH chooses.', flush=True)
    sh(*pip, TORCH)


def ensure_venv(extra):
    "Create the venv and install llmplay[extra] unless that install is already up to date."
    torch = torch_args(platform.system(), has_nvidia_gpu(), os.environ)
    stamp = VENV/f'.llmplay-{extra}'
    key = hashlib.sha256(b''.join((TOP/f).read_bytes() for f in ['settings.ini', 'setup.py']) +
                         ' '.join(torch).encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == key: return
    if not (BIN/'python').exists(): venv.create(VENV, with_pip=True)
    pip = [BIN/'python', '-m', 'pip', 'install', '--disable-pip-version-check']
    install_torch(pip, torch)  # first, so that later requirements (torch>=2.1) are already met
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
        sh(BIN/'python', TOP/'tools/docsite.py', *a.args, cwd=TOP, env=env)


if __name__ == '__main__':
    main()

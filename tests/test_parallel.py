"""Data-parallel training as a user runs it: `llmplay train` in 2 processes (torchrun, gloo, one thread each) against 1 process,
gradient accumulation, a process killed with kill -9, resuming with another number of processes, a workspace that only one
process sees, and `llmplay train --nproc`."""
import json, math, os, signal, shutil, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from llmplay.parallel import torchrun_command
from llmplay.checkpoints import load_checkpoint

PY = sys.executable
TINY = ['--preset', 'tiny', '--precision', 'fp32']  # fp32: the runs differ only in the order of additions
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}


def command(nproc: int, *args) -> list[str]:
    "`llmplay ARGS` in `nproc` processes: torchrun for more than one."
    return torchrun_command(nproc, args) if nproc > 1 else [PY, '-m', 'llmplay', *args]


def train(root, nproc: int, *args, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run(command(nproc, 'train', *args, '--root', str(root)), capture_output=True, text=True, timeout=600, env=ENV)
    if check: assert r.returncode == 0, r.stderr[-4000:]
    return r


def log(root) -> list[dict]:
    return [json.loads(line) for line in (Path(root)/'models/train_log.jsonl').read_text().splitlines() if line.strip()]


def checkpoints(root) -> list[int]:
    return sorted(int(p.stem.split('_')[1]) for p in (Path(root)/'models/checkpoints').glob('ckpt_*.pt'))


def assert_same_losses(a: list[dict], b: list[dict], rel=1e-4):
    "The two training logs have the same rows, and the same training and validation losses within float tolerance."
    assert [r['step'] for r in a] == [r['step'] for r in b]
    for x, y in zip(a, b):
        for k in ('loss', 'val_loss'):
            assert (x[k] is None) == (y[k] is None), (x['step'], k)
            if x[k] is not None: assert math.isclose(x[k], y[k], rel_tol=rel), (x['step'], k, x[k], y[k])


@pytest.fixture(scope='module')
def tokenized(tmp_path_factory):
    root = tmp_path_factory.mktemp('tokens')
    subprocess.run([PY, '-m', 'llmplay', 'run', '--until', '2', '--source', 'sample', '--vocab-size', '1024', '--root', str(root)],
                   check=True, capture_output=True, timeout=600)
    return root


def copy(tokenized, dest: Path) -> Path:
    shutil.copytree(tokenized, dest)
    return dest


def workers(launcher: subprocess.Popen, n: int, timeout=120) -> dict[int, int]:
    "rank -> pid of the `n` training processes below `launcher` (torchrun's children, found by their RANK)."
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = {}
        for pid in subprocess.run(['pgrep', '-P', str(launcher.pid)], capture_output=True, text=True).stdout.split():
            try: env = Path(f'/proc/{pid}/environ').read_bytes().split(b'\0')
            except OSError: continue
            rank = [e for e in env if e.startswith(b'RANK=')]
            if rank: found[int(rank[0][5:])] = int(pid)
        if len(found) == n: return found
        time.sleep(0.2)
    raise AssertionError(f'{n} training processes did not start in {timeout} s')


def wait_for_checkpoint(p: subprocess.Popen, root: Path, step: int, timeout=180):
    deadline = time.time() + timeout
    while not (Path(root)/'models/checkpoints').exists() or not checkpoints(root) or checkpoints(root)[-1] < step:
        assert p.poll() is None, p.stderr.read()[-4000:]
        assert time.time() < deadline, f'no checkpoint of step {step} in {timeout} s'
        time.sleep(0.2)


def test_two_processes_match_one(tokenized, tmp_path):
    "The same global batch and seed: 2 processes (4 sequences each), 1 process (8 at once) and 1 process accumulating 2 x 4."
    args = [*TINY, '--set', 'max_steps=60', 'eval_interval=20']
    runs = {name: copy(tokenized, tmp_path/name) for name in ('one', 'two', 'accumulated')}
    train(runs['one'], 1, *args)
    r = train(runs['two'], 2, *args)
    train(runs['accumulated'], 1, *args, 'micro_batch_size=4')
    one = log(runs['one'])
    assert [row['step'] for row in one] == list(range(5, 61, 5)) and sum(row['val_loss'] is not None for row in one) == 3
    assert_same_losses(one, log(runs['two']))
    assert_same_losses(one, log(runs['accumulated']))
    weights = [load_checkpoint(Path(runs[n])/'models/checkpoints/ckpt_0000060.pt') for n in ('one', 'two')]
    assert weights[1].processes == 2 and weights[0].processes == 1
    for k, w in weights[0].weights.items(): assert torch.allclose(w, weights[1].weights[k], rtol=1e-3, atol=1e-5), k
    assert r.stdout.count('resuming') == 0 and 'step 60' in r.stdout


def test_kill_one_process(tokenized, tmp_path):
    "kill -9 of one of 2 processes stops the run within seconds, never hangs; the run resumes in 1 process from its checkpoint."
    root = copy(tokenized, tmp_path/'ws')
    args = ['train', *TINY, '--set', 'max_steps=100000', 'ckpt_interval=25', 'eval_interval=50', '--root', str(root)]
    p = subprocess.Popen(command(2, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    ranks = workers(p, 2)
    wait_for_checkpoint(p, root, 50)
    t0 = time.time()
    os.kill(ranks[1], signal.SIGKILL)
    out, err = p.communicate(timeout=60)
    stopped = time.time() - t0
    assert p.returncode != 0 and stopped < 20, (p.returncode, stopped)
    assert 'Signal 9 (SIGKILL)' in err and 'rank      : 1' in err, err[-3000:]  # torchrun names the process that died first
    assert not Path(f'/proc/{ranks[0]}').exists()  # and process 0 went down with it
    saved = checkpoints(root)[-1]
    r = train(root, 1, *TINY, '--set', f'max_steps={saved + 30}', 'ckpt_interval=25', 'eval_interval=50')
    steps = [row['step'] for row in log(root)]
    assert steps == sorted(set(steps)) and steps[-1] == saved + 30 and f'resuming from ckpt_{saved:07d}.pt' in r.stdout + r.stderr
    print(f'kill -9 of process 1 stopped the run in {stopped:.1f} s; resumed from step {saved} in 1 process')


@pytest.mark.parametrize('before,after', [(2, 1), (1, 2)], ids=['2-then-1', '1-then-2'])
def test_resume_with_another_number_of_processes(tokenized, tmp_path, before, after):
    "A run stopped by Ctrl-C in `before` processes continues in `after`; its losses are those of a run never stopped."
    # a constant learning rate: the schedule does not depend on max_steps, so the reference can be given the length later
    # (and a low one: at tiny's peak of 3e-3 without warmup, training is chaotic and float rounding grows 10x every 5 steps)
    settings = ['lr=0.001', 'min_lr=0.001', 'warmup_steps=0', 'ckpt_interval=10', 'eval_interval=20']
    root, reference = copy(tokenized, tmp_path/'ws'), copy(tokenized, tmp_path/'reference')
    args = ['train', *TINY, '--set', 'max_steps=100000', *settings, '--root', str(root)]
    p = subprocess.Popen(command(before, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                         start_new_session=True)  # a Ctrl-C reaches torchrun alone, as at a terminal
    wait_for_checkpoint(p, root, 20)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=90)
    assert p.returncode != 0 and 'stopped at step' in out, err[-3000:]
    stopped = checkpoints(root)[-1]
    assert f'saved ckpt_{stopped:07d}.pt' in out and stopped >= 20  # a checkpoint of the very step it stopped at
    end = stopped + 15
    r = train(root, after, *TINY, '--set', f'max_steps={end}', *settings)
    assert f'resuming from ckpt_{stopped:07d}.pt (step {stopped}' in r.stdout + r.stderr
    train(reference, 1, *TINY, '--set', f'max_steps={end}', *settings)
    assert_same_losses(log(reference), log(root))


def test_time_budget_and_fitted_recipe(tokenized, tmp_path):
    "The default preset in 2 processes: process 0 fits the recipe and the others take it; the clock they agree on ends the run."
    root = copy(tokenized, tmp_path/'ws')
    r = train(root, 2, '--time-budget', '15', '--set', 'evals_per_run=3')
    rows = log(root)
    assert r.stdout.count('fitted recipe:') == 1 and r.stdout.count('trained ') == 1  # process 0 alone prints
    assert sum(row['val_loss'] is not None for row in rows) == 3 and 15 <= rows[-1]['elapsed'] < 25
    ckpt = load_checkpoint(sorted((root/'models/checkpoints').glob('*.pt'))[-1])
    assert ckpt.state['finished'] and ckpt.train_config['fitted'] and ckpt.processes == 2


def test_workspace_only_one_process_sees(tokenized, tmp_path):
    "Each process given its own copy of the workspace (as on machines without shared storage): a clear error, in seconds."
    roots = [copy(tokenized, tmp_path/f'ws{i}') for i in range(2)]
    script = tmp_path/'own_root.py'  # torchrun gives every process the same arguments: the root comes from LOCAL_RANK
    script.write_text('import os, sys\nfrom llmplay.cli import main\n'
                      f"sys.exit(main(['train', *{TINY!r}, '--root', {[str(r) for r in roots]!r}[int(os.environ['LOCAL_RANK'])]]))\n")
    cmd = [PY, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node=2', str(script)]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode != 0 and time.time() - t0 < 120
    assert 'every process must see the workspace that process 0 writes' in r.stderr, r.stderr[-3000:]
    assert r.stderr.count('sees an empty lock file') == 2  # both processes say it, each in one line, without a traceback
    assert 'process 1 of 2' in r.stderr and not any(f'llmplay/{m}.py' in r.stderr for m in ('cli', 'training', 'parallel'))
    for root in roots: assert not (root/'models/gpt_model.pth').exists() and not (root/'models/checkpoints').exists()


def test_backend_that_does_not_fit(tokenized, tmp_path):
    "nccl asked for on a CPU: every process says what to use instead."
    root = copy(tokenized, tmp_path/'ws')
    r = subprocess.run(command(2, 'train', *TINY, '--root', str(root)), capture_output=True, text=True, timeout=300,
                       env={**ENV, 'LLMPLAY_BACKEND': 'nccl'})
    assert r.returncode != 0 and 'the nccl backend connects CUDA GPUs' in r.stderr and 'use gloo' in r.stderr, r.stderr[-3000:]


def test_cli_nproc(tokenized, tmp_path):
    "`llmplay train --nproc 2` starts torchrun for the user; the result is the 2-process run's."
    root = copy(tokenized, tmp_path/'ws')
    r = subprocess.run([PY, '-m', 'llmplay', 'train', '--nproc', '2', *TINY, '--root', str(root)], capture_output=True, text=True,
                       timeout=600, env=ENV)
    assert r.returncode == 0, r.stderr[-3000:]
    assert load_checkpoint(Path(root)/'models/checkpoints/ckpt_0000040.pt').processes == 2


def test_gpu_check_runs_on_cpu(tmp_path):
    "tools/gpu_check.py, the script that checks a GPU machine, runs here on the CPU (tiny, a few steps)."
    r = subprocess.run([PY, str(Path(__file__).parent.parent/'tools/gpu_check.py'), '--device', 'cpu', '--preset', 'tiny',
                        '--steps', '20', '--gen-tokens', '16', '--json'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report['tokens_per_s'] > 0 and 0 < report['mfu_of_matmul'] < 1 and report['gen_cached'] > 0, report
    assert report['last_loss'] < report['first_loss'] and 'tokens/s with the KV cache' in r.stdout

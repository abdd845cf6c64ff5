"""The `llmplay` command as a user runs it: interrupted training resumes; status and errors at the shell."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest

LLMPLAY = str(Path(sys.executable).parent/'llmplay')


def llmplay(*args, root, check=True):
    r = subprocess.run([LLMPLAY, *args, '--root', str(root)], capture_output=True, text=True, timeout=600)
    if check: assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope='module')
def tokenized(tmp_path_factory):
    root = tmp_path_factory.mktemp('ws')
    llmplay('run', '--until', '2', '--source', 'sample', '--vocab-size', '1024', root=root)
    return root


def state(root): return json.loads(llmplay('status', '--json', root=root).stdout)['state']


def train_log_steps(root):
    return [json.loads(l)['step'] for l in (root/'models/train_log.jsonl').read_text().splitlines() if l.strip()]


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=['ctrl-c', 'kill', 'kill-9'])
def test_interrupted_training_resumes(tokenized, tmp_path, sig):
    root = tmp_path/'ws'
    subprocess.run(['cp', '-r', str(tokenized), str(root)], check=True)
    train = ['train', '--preset', 'tiny', '--set', 'max_steps=100000', 'ckpt_interval=25', 'eval_interval=50']
    p = subprocess.Popen([LLMPLAY, *train, '--root', str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpts = root/'models/checkpoints'
    deadline = time.time() + 120
    while not (ckpts.exists() and len(list(ckpts.glob('*.pt'))) >= 2):
        assert p.poll() is None and time.time() < deadline, p.stderr.read() if p.poll() is not None else 'no checkpoint in 120 s'
        time.sleep(0.2)
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    if sig != signal.SIGKILL:
        assert p.returncode == 130, err
        assert 'run the same command again' in err
    saved = max(int(c.stem.split('_')[1]) for c in ckpts.glob('ckpt_*.pt'))
    assert saved >= 50
    r = llmplay('train', '--preset', 'tiny', '--set', f'max_steps={saved + 30}', 'ckpt_interval=25', 'eval_interval=50', root=root)
    steps = train_log_steps(root)
    assert max(steps) == saved + 30, r.stdout
    assert 'resum' in (r.stdout + r.stderr).lower(), r.stdout + r.stderr  # it said it resumed
    assert state(root) == 3


def test_status_and_clear_errors(tmp_path):
    root = tmp_path/'empty'
    st = json.loads(llmplay('status', '--json', root=root).stdout)
    assert st['state'] == 0 and set(st['artifacts']) == {'corpus', 'tokenizer', 'tokenized', 'model'}
    assert all(set(a) == {'path', 'ok', 'problem', 'fix'} for a in st['artifacts'].values())
    for args, fix in [(['tokenize'], 'llmplay run'), (['train'], 'llmplay run'),
                      (['generate', 'Hi'], 'llmplay'), (['eval', '--text-file', str(tmp_path/'nope.txt')], 'nope.txt')]:
        r = llmplay(*args, root=root, check=False)
        assert r.returncode == 2 and fix in r.stderr and 'Traceback' not in r.stderr, (args, r.stderr)
    r = llmplay('train', '--set', 'n_layers=3', root=root, check=False)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    r = llmplay('status', '--check', root=root, check=False)
    assert r.returncode == 10 and 'state 0' in r.stdout


def test_generate_is_reproducible(tokenized, tmp_path):
    root = tmp_path/'ws'
    subprocess.run(['cp', '-r', str(tokenized), str(root)], check=True)
    llmplay('train', '--preset', 'tiny', root=root)
    g = [llmplay('generate', 'The', '--greedy', '--max-new-tokens', '20', root=root).stdout for _ in range(2)]
    s = [llmplay('generate', 'The', '--seed', '3', '--max-new-tokens', '20', root=root).stdout for _ in range(3)]
    other = llmplay('generate', 'The', '--seed', '4', '--max-new-tokens', '20', root=root).stdout
    assert g[0] == g[1] and s[0] == s[1] == s[2] and other != s[0]
    assert all(out.startswith('The') and len(out) > len('The\n') + 5 for out in g + s)  # a continuation, not just the prompt
    r = llmplay('generate', 'The', '--temperature', '-1', root=root, check=False)
    assert r.returncode == 2 and 'temperature' in r.stderr

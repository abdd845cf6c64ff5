"""The command-line slips of issue #20, each through the real `llmplay` command on a copy of a tiny workspace.

Every bad input ends in one line that says what to do, exit code 2, no traceback, and no file touched; a Ctrl-C of a
command that does not resume does not promise that it does; stale temp files of interrupted writes are shown by
`status` and removed by `run`.
"""
import hashlib, os, re, shutil, signal, subprocess, sys, time
from pathlib import Path

import pytest

LLMPLAY = str(Path(sys.executable).parent/'llmplay')
RUN = ['run', '--preset', 'tiny', '--source', 'sample', '--vocab-size', '1024']
ENV = {k: v for k, v in os.environ.items() if k not in ('LLMPLAY_ROOT', 'LLMPLAY_CONTACT')} | {'OMP_NUM_THREADS': '1'}
PROGRESS = re.compile(r'^\s*\w[\w ]*:\s+\d+%\|')  # tqdm's bars


def llmplay(*args, root, timeout=600) -> subprocess.CompletedProcess:
    "Run the `llmplay` console script on the workspace `root`."
    return subprocess.run([LLMPLAY, *args, '--root', str(root)], capture_output=True, text=True, errors='replace',
                          timeout=timeout, env=ENV)


def said(stderr: str) -> list[str]:
    "The lines of `stderr` a person reads: progress bars and blank lines left out."
    return [line for line in re.split(r'[\r\n]', stderr) if line.strip() and not PROGRESS.match(line)]


def one_line(r: subprocess.CompletedProcess, code: int, pattern: str) -> str:
    "Check that `r` exited with `code` and said one line on stderr matching `pattern`, no traceback; the line."
    lines = said(r.stderr)
    assert 'Traceback' not in r.stderr and len(lines) == 1, r.stderr
    assert r.returncode == code, (r.returncode, r.stderr)
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def files(root: Path) -> dict[str, str]:
    "Every file under `root` (the lock file left out) and its SHA-256."
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob('*'))
            if p.is_file() and p.name != '.llmplay.lock'}


@pytest.fixture(scope='module')
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('slips')/'ws'
    r = llmplay(*RUN, root=root)
    assert r.returncode == 0, r.stderr[-3000:]
    return root


@pytest.fixture
def ws(prepared, tmp_path) -> Path:
    "A copy of the prepared workspace, at state 3."
    shutil.copytree(prepared, tmp_path/'ws')
    return tmp_path/'ws'


@pytest.mark.parametrize('more', ['0', 'nan', 'inf', '-5', '1e9'])
def test_train_more_is_checked_like_time_budget(ws, more):
    before = files(ws)
    line = one_line(llmplay('train', '--more', more, root=ws), 2, r'^llmplay train: error: more must be a number')
    budget = one_line(llmplay('train', '--time-budget', more, root=ws), 2, r'time_budget must be a number')
    assert re.search(r'from \S+ to \S+', line)[0] == re.search(r'from \S+ to \S+', budget)[0]  # the same range
    assert files(ws) == before  # nothing trained, nothing rewritten


def test_chat_port_out_of_range(ws):
    one_line(llmplay('chat', '--port', '99999', root=ws), 2, r'^llmplay chat: error: --port must be from 1 to 65535')


@pytest.mark.parametrize('command', [['tokenize'], RUN])
def test_vocab_size_out_of_range(ws, command):
    before = files(ws)
    args = [a for a in command if a not in ('--vocab-size', '1024')]
    r = llmplay(*args, '--vocab-size', '-5', root=ws)
    one_line(r, 2, rf'^llmplay {args[0]}: error: vocab_size must be a whole number from 261 .* got -5$')
    assert files(ws) == before


def test_tiny_temperature_is_greedy(ws):
    tiny = llmplay('generate', 'The', '--temperature', '1e-300', '--max-new-tokens', '20', root=ws)
    assert tiny.returncode == 0 and 'Traceback' not in tiny.stderr, tiny.stderr
    greedy = llmplay('generate', 'The', '--greedy', '--max-new-tokens', '20', root=ws)
    assert tiny.stdout == greedy.stdout


def test_ctrl_c_of_generate_promises_no_checkpoint(ws):
    # a prompt that is not UTF-8 makes `generate` say so on stderr once it runs: then Ctrl-C lands in its work
    p = subprocess.Popen([LLMPLAY, 'generate', b'The \xff', '--max-new-tokens', '2000', '--root', str(ws)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    first = p.stderr.readline()
    assert first.startswith('note: the prompt was not valid UTF-8'), first + p.stderr.read()
    p.send_signal(signal.SIGINT)
    rest = p.stderr.read()
    p.wait(timeout=60)
    assert p.returncode == 130 and said(rest) == ['interrupted'], (p.returncode, rest)


def test_stale_temp_files_are_shown_and_removed(ws):
    stale = ws/'models/checkpoints/.ckpt_0000040.pt.k1ll3d.tmp'  # what kill -9 during a checkpoint's save leaves
    stale.write_bytes(b'half a checkpoint')
    old = time.time() - 120
    os.utime(stale, (old, old))
    fresh = ws/'models/.gpt_model.pth.wr1t1ng.tmp'  # touched just now: a write that may be in progress
    fresh.write_bytes(b'being written')
    r = llmplay('status', root=ws)
    assert r.returncode == 0 and re.search(r'1 stale temp file.*`llmplay run` removes them', r.stdout), r.stdout
    before = {k: v for k, v in files(ws).items() if not k.endswith('.tmp')}
    r = llmplay('run', root=ws)
    assert r.returncode == 0 and 'removed 1 stale temp file' in r.stdout + r.stderr, r.stdout + r.stderr
    assert not stale.exists() and fresh.exists()
    assert {k: v for k, v in files(ws).items() if not k.endswith('.tmp')} == before  # nothing else changed
    assert 'stale temp file' not in llmplay('status', root=ws).stdout

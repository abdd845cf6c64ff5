"""Fault injection through the real `llmplay` command: kill -9, Ctrl-C and SIGTERM at random moments of train,
tokenize and collect; every artifact damaged in every way; concurrent writers; bad inputs.

Every trial checks three things: nothing healthy is lost or overwritten (artifacts compared by SHA-256 before and
after), the workspace ends consistent (status at state 3 with every check passing, the training log's steps strictly
increasing), and the user saw a one-line message, never a traceback.

Random but reproducible: every choice (moments, signals, offsets, lengths) is drawn from `random.Random(SEED)` when
this module is imported, in a fixed order (`PLAN`), so a failure reproduces with the same seed; each failing trial
names the seed and itself. `LLMPLAY_FAULT_SEED=N` tries other draws. Trials run two at a time (the CI machine has two
cores) on copies of one prepared workspace (`llmplay run --preset tiny --source sample --vocab-size 1024`).

The tests at the end each reproduce, in a few lines, a bug these trials found (fixed since).
"""
import argparse, hashlib, json, os, random, re, shutil, signal, subprocess, sys, time, traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from fake_mediawiki import FakeMediaWiki  # noqa: E402

from llmplay import pipeline  # noqa: E402
from llmplay.data import check_corpus, read_documents  # noqa: E402
from llmplay.checkpoints import MODEL, load_checkpoint, load_payload, read_train_log, save_payload  # noqa: E402
from llmplay.workspace import Workspace, lock_holder, read_json  # noqa: E402

SEED = int(os.environ.get('LLMPLAY_FAULT_SEED', '1234'))
LLMPLAY = str(Path(sys.executable).parent/'llmplay')
RUN = ['run', '--preset', 'tiny', '--source', 'sample', '--vocab-size', '1024']
WORKERS = 2  # trials at once
ENV = {k: v for k, v in os.environ.items() if k not in ('LLMPLAY_ROOT', 'LLMPLAY_CONTACT')} | {'OMP_NUM_THREADS': '1'}

ARTIFACTS = ('corpus', 'corpus_meta', 'tokenizer_model', 'tokenizer_vocab', 'tokenized', 'tokens_bin', 'tokens_meta',
             'model', 'checkpoint', 'train_log')
KINDS = ('truncated', 'emptied', 'deleted', 'changed', 'symlink', 'replaced')
REPLACED_BY = {  # "replaced by another file's content": which file's
    'corpus': 'tokenized', 'corpus_meta': 'tokens_meta', 'tokenizer_model': 'tokenizer_vocab', 'tokenizer_vocab': 'corpus',
    'tokenized': 'tokens_bin', 'tokens_bin': 'tokenized', 'tokens_meta': 'corpus_meta', 'model': 'checkpoint',
    'checkpoint': 'model', 'train_log': 'corpus_meta'}
# Artifacts damaged together in one trial: their repairs do not depend on each other, so one `llmplay run` checks
# several (artifact, damage) pairs; every pair of ARTIFACTS x KINDS is in exactly one trial.
GROUPS = (('corpus', 'corpus_meta', 'tokenizer_model', 'tokenizer_vocab', 'checkpoint', 'train_log'),  # from the token ids
          ('tokenized', 'tokens_bin', 'tokens_meta', 'model'))  # and from the model's copy; from the corpus and a checkpoint
KNOWN_BUGS = {}  # (artifact, damage) pairs left out of the trials while a bug is open, each tested on its own below

# --- the plan: every random choice, drawn once, in a fixed order ---
_rng = random.Random(SEED)
PLAN = {
    'damage': {(kind, i): {name: (_rng.random(), _rng.random(), _rng.getrandbits(32)) for name in group}
               for kind in KINDS for i, group in enumerate(GROUPS)},
    'train': [(_rng.choice([signal.SIGKILL, signal.SIGINT, signal.SIGTERM]), _rng.random()) for _ in range(8)],
    'tokenize': [(_rng.choice([signal.SIGKILL, signal.SIGINT, signal.SIGTERM]), _rng.random()) for _ in range(6)],
    'collect': [(_rng.choice([signal.SIGKILL, signal.SIGINT, signal.SIGTERM]), _rng.random()) for _ in range(6)],
}


# --- helpers ---

def llmplay(*args, root, env=None, timeout=600) -> subprocess.CompletedProcess:
    "Run the `llmplay` console script on the workspace `root`."
    return subprocess.run([LLMPLAY, *args, '--root', str(root)], capture_output=True, text=True, errors='replace',
                          timeout=timeout, env=env or ENV)


PROGRESS = re.compile(r'^\s*\w[\w ]*:\s+\d+%\|')  # tqdm's bars: 'training:  14%|█▎   | 41/300 step'


def said(stderr: str) -> list[str]:
    "The lines of `stderr` a person reads: progress bars and blank lines left out."
    return [line for line in re.split(r'[\r\n]', stderr) if line.strip() and not PROGRESS.match(line)]


def one_line(r: subprocess.CompletedProcess, code: int, pattern: str = '') -> str:
    "Check that `r` exited with `code` and told the user one line matching `pattern` (no traceback); the line."
    stderr = r.stderr
    lines = said(stderr)
    assert r.returncode == code and 'Traceback' not in stderr and len(lines) == 1 and re.search(pattern, lines[0]), (
        f'exit {r.returncode} (wanted {code}), stderr lines {lines[-6:]!r}, wanted one matching {pattern!r}')
    return lines[0]


def sha(path: Path) -> str: return hashlib.sha256(path.read_bytes()).hexdigest()


def files(root) -> dict[str, str | None]:
    "Each artifact of the workspace at `root` (checkpoints included) by its relative path: SHA-256, 'link', or None."
    out = {}
    for p in Workspace(Path(root)).artifacts().values():
        out[str(p.relative_to(root))] = 'link' if p.is_symlink() else sha(p) if p.is_file() else None
    return out


def path_of(ws: Workspace, name: str) -> Path:
    return ws.list_checkpoints()[0] if name == 'checkpoint' else getattr(ws, name)


def without_created(path: Path):
    meta = read_json(path)
    return {k: v for k, v in meta.items() if k != 'created'} if isinstance(meta, dict) else meta


def log_steps(ws: Workspace) -> list[int]:
    return [r['step'] for r in read_train_log(ws)]


def assert_consistent(ws: Workspace, state: int = 3) -> dict:
    "The workspace is at `state` with every artifact's check passing, whole checkpoints named by their step, an ordered log, no lock."
    st = pipeline.status(ws)
    bad = {n: a['problem'] for n, a in st['artifacts'].items() if not a['ok']}
    assert st['state'] == state and (state < 3 or not bad), f'state {st["state"]}, problems: {bad}'
    for c in st['checkpoints']:
        assert c['ok'] and c['step'] == int(Path(c['path']).stem.split('_')[1]), f'checkpoint {c}'
    steps = log_steps(ws)
    assert all(a < b for a, b in zip(steps, steps[1:])), f'training log not strictly increasing: {steps}'
    assert lock_holder(ws) is None, f'the lock is still held: {lock_holder(ws)}'
    links = [n for n, p in ws.artifacts().items() if p.is_symlink() and n != 'train_log']
    assert not links, f'still symbolic links: {links}'
    return st


def in_parallel(trials: dict):
    "Run each of `trials` (name: function) with WORKERS threads; fail with every failed trial's name, seed and error."
    def attempt(item):
        name, fn = item
        try: fn(); return None
        except Exception as e:
            tb = traceback.extract_tb(e.__traceback__)[-1]
            return f'trial {name} (seed {SEED}): {type(e).__name__}: {e} [{Path(tb.filename).name}:{tb.lineno}]'
    with ThreadPoolExecutor(WORKERS) as pool: failures = [f for f in pool.map(attempt, trials.items()) if f]
    assert not failures, f'{len(failures)} of {len(trials)} trials failed:\n' + '\n'.join(failures)


@dataclass
class Prepared:
    root: Path
    files: dict
    seconds: dict  # how long each stage took (from the moments its line was printed)

    def copy(self, dest: Path) -> Path:
        shutil.copytree(self.root, dest, symlinks=True)
        return dest

    def file(self, rel: str) -> Path: return self.root/rel


@pytest.fixture(scope='session')
def prepared(tmp_path_factory) -> Prepared:
    "A workspace at state 3 made by `llmplay run` on the tiny preset; tests copy it and never change it."
    root = tmp_path_factory.mktemp('faults')/'prepared'
    times, t0 = {}, time.monotonic()
    with open(root.parent/'prepared.stderr', 'w') as err:
        p = subprocess.Popen([LLMPLAY, *RUN, '--root', str(root)], stdout=subprocess.PIPE, stderr=err, text=True, env=ENV)
        for line in p.stdout:  # 'collect: … -> collecting', 'tokenize: …', 'train: …', 'state 3: …'
            if m := re.match(r'(collect|tokenize|train|state \d):', line): times[m[1]] = time.monotonic() - t0
        assert p.wait(timeout=900) == 0, (root.parent/'prepared.stderr').read_text()[-2000:]
    assert_consistent(Workspace(root))
    seconds = {'tokenize': times['train'] - times['tokenize'], 'train': times['state 3'] - times['train']}
    return Prepared(root, files(root), seconds)


# --- every artifact damaged in every way; `llmplay run` repairs it without losing anything healthy ---

def damage(ws: Workspace, name: str, kind: str, draws, outside: Path, healthy: Workspace) -> str:
    "Damage artifact `name` in the way `kind`, with the random `draws` (`healthy`: where other files' contents come from)."
    path = path_of(ws, name)
    data, (a, b, bits) = path.read_bytes(), draws
    rel = path.relative_to(ws.root)
    if kind == 'truncated':
        n = 1 + int(a * (len(data) - 2))
        path.write_bytes(data[:n])
        return f'{rel} truncated to {n:,} of {len(data):,} bytes'
    if kind == 'emptied': path.write_bytes(b'')
    elif kind == 'deleted': path.unlink()
    elif kind == 'changed':  # 1 to 4 bytes changed in place, at random offsets
        changed, r = bytearray(data), random.Random(bits)
        offsets = sorted(r.randrange(len(data)) for _ in range(1 + int(b * 4)))
        for i in offsets: changed[i] ^= r.randrange(1, 256)
        with open(path, 'r+b') as f: f.write(changed)
        return f'{rel}: bytes changed at {offsets}'
    elif kind == 'symlink':  # a link to a copy of its own healthy content, outside the workspace
        outside.mkdir(exist_ok=True)
        target = outside/f'{name}{path.suffix}'
        target.write_bytes(data)
        path.unlink()
        path.symlink_to(target)
    elif kind == 'replaced': path.write_bytes(path_of(healthy, REPLACED_BY[name]).read_bytes())
    return f'{rel} {kind}'


def damage_trial(prepared: Prepared, tmp: Path, kind: str, group_index: int):
    root = prepared.copy(tmp/f'{kind}-{group_index}')
    ws, outside = Workspace(root), tmp/f'{kind}-{group_index}-outside'
    damaged = [n for n in GROUPS[group_index] if (n, kind) not in KNOWN_BUGS]
    draws = PLAN['damage'][(kind, group_index)]
    damaged_paths = {str(path_of(ws, n).relative_to(root)): n for n in damaged}
    done = [damage(ws, n, kind, draws[n], outside, Workspace(prepared.root)) for n in damaged]
    as_damaged = files(root)
    before = pipeline.status(ws)
    r = llmplay(*RUN, root=root)
    context = f'{"; ".join(done)}: '
    assert r.returncode == 0 and 'Traceback' not in r.stderr, context + r.stderr[-1500:]
    if before['state'] < 3 or any(not c['ok'] for c in before['checkpoints']):  # noticed: the user is told what was done
        assert re.search(r'^(collect|tokenize|train): .* -> |^skipping ckpt_', r.stdout, re.M), context + r.stdout[-800:]
    st = assert_consistent(ws)
    after = files(root)
    for rel, digest in prepared.files.items():  # nothing healthy lost
        name = damaged_paths.get(rel)
        if name and after.get(rel) and after[rel] == as_damaged.get(rel) and after[rel] != 'link':
            continue  # a change that left the file whole, as the checks above say (a byte of JSON, of zip padding...)
        if name is None and rel.endswith('tokenized_corpus.json'):
            assert without_created(root/rel) == without_created(prepared.file(rel)), context + f'{rel} changed'
        elif name is None: assert after.get(rel) == digest, context + f'healthy {rel} changed or went missing'
        elif name in ('corpus', 'tokenizer_model', 'tokenizer_vocab', 'tokenized', 'tokens_bin'):
            assert after.get(rel) == digest, context + f'{rel} was not restored bit for bit'
        elif name == 'tokens_meta': assert without_created(root/rel) == without_created(prepared.file(rel)), context + rel
        elif name == 'corpus_meta':
            assert [a['sha1'] for a in read_json(root/rel)['articles']] == [
                a['sha1'] for a in read_json(prepared.file(rel))['articles']], context + 'records of other documents'
            if kind == 'symlink': assert read_json(root/rel)['articles'] == read_json(prepared.file(rel))['articles']
        elif name == 'model': assert st['model']['step'] == 40, context + f"model at step {st['model']['step']}"
        elif name == 'checkpoint': assert after.get(rel) in (None, digest), context + f'{rel} was rewritten'
    trained = [rel for rel in after if 'checkpoints' in rel and rel not in prepared.files]
    assert not trained, context + f'training ran again: new {trained}'
    for target in outside.glob('*'):  # the links' targets are untouched
        name = target.stem
        assert target.read_bytes() == path_of(Workspace(prepared.root), name).read_bytes(), context + f'{target} changed'
    shutil.rmtree(root)


@pytest.mark.parametrize('group', range(len(GROUPS)), ids=['+'.join(g) for g in GROUPS])
def test_damaged_artifacts_are_repaired(prepared, tmp_path, group):
    "These artifacts damaged in each way come back with `llmplay run`: restored bit for bit where they can be, no retraining."
    in_parallel({f'{kind} {"+".join(GROUPS[group])}': (lambda kind=kind: damage_trial(prepared, tmp_path, kind, group))
                 for kind in KINDS})


# --- kill -9, Ctrl-C, SIGTERM at random moments ---

def started(p: subprocess.Popen, ws: Workspace, deadline: float = 300):
    "Wait until process `p` holds the workspace's lock (it has begun its work), or has ended."
    t = time.monotonic() + deadline
    while p.poll() is None:
        try:
            if json.loads(ws.lock_file.read_text() or '{}').get('pid') == p.pid: return
        except (OSError, ValueError): pass
        assert time.monotonic() < t, 'the command did not start its work'
        time.sleep(0.01)


def interrupt(args, ws: Workspace, sig, delay: float, log: Path):
    "Run `llmplay args`, send `sig` `delay` seconds after it took the lock; (exit code, stderr, whether it was still running)."
    with open(log.with_suffix('.out'), 'w+') as out, open(log.with_suffix('.err'), 'w+') as err:
        p = subprocess.Popen([LLMPLAY, *args, '--root', str(ws.root)], stdout=out, stderr=err, env=ENV)
        started(p, ws)
        time.sleep(delay)
        landed = p.poll() is None
        if landed: p.send_signal(sig)
        code = p.wait(timeout=300)
        err.seek(0)
        return code, err.read(), landed


def check_interrupted(code, stderr, sig, landed, what, resumes=True):
    "What the user saw after the signal: Ctrl-C and SIGTERM stop cleanly with one line; kill -9 says nothing."
    if sig == signal.SIGKILL: assert code in (-9, 0) and (landed or code == 0), what
    else:
        assert 'Traceback' not in stderr, f'{what}: {stderr[-1500:]}'
        # 130: stopped cleanly; 0: it had finished its work; -sig: it had finished, and Python was exiting
        assert code in (130, 0, -sig), f'{what}: exit {code}, {said(stderr)[-3:]}'
        if code == 130:
            lines = said(stderr)
            # only a command that continues from its checkpoint (train, run) says to run it again; others: 'interrupted'
            assert len(lines) == 1, f'{what}: {lines}'
            if resumes: assert lines[0].startswith('interrupted: run the same command again'), f'{what}: {lines}'
            else: assert lines[0] == 'interrupted', f'{what}: {lines}'


def train_chain(prepared, tmp):
    root = prepared.copy(tmp/'train')
    ws = Workspace(root)
    for p in [ws.model, ws.train_log, *ws.list_checkpoints()]: p.unlink()
    steps = 100
    cmd = ['train', '--preset', 'tiny', '--set', f'max_steps={steps}', 'ckpt_interval=10']
    stage12 = {k: v for k, v in files(root).items() if not k.startswith('models/gpt') and 'checkpoints' not in k
               and 'train_log' not in k}
    window = max(2.0, prepared.seconds['train'] * steps / 40)  # the seconds an uninterrupted run would train
    saved = 0
    for i, (sig, u) in enumerate(PLAN['train']):
        what = f'train trial {i} (seed {SEED}): {signal.Signals(sig).name} {u * window:.2f} s after it began'
        code, stderr, landed = interrupt(cmd, ws, sig, u * window, tmp/f'train-{i}')
        check_interrupted(code, stderr, sig, landed, what)
        assert {k: v for k, v in files(root).items() if k in stage12} == stage12, f'{what}: the data changed'
        st = assert_consistent(ws, state=3 if ws.model.exists() else 2)
        newest = max([c['step'] for c in st['checkpoints']], default=0)
        assert newest >= saved, f'{what}: checkpoint of step {saved} lost (newest now {newest})'
        saved = newest
    r = llmplay(*cmd, root=root)
    assert r.returncode == 0, r.stderr[-1500:]
    st = assert_consistent(ws)
    assert st['model']['step'] == steps and st['model']['run_finished']
    assert log_steps(ws) == list(range(5, steps + 1, 5)), f'log steps {log_steps(ws)}'


def tokenize_chain(prepared, tmp):
    root = prepared.copy(tmp/'tokenize')
    ws = Workspace(root)
    for p in [ws.tokenizer_model, ws.tokenizer_vocab, ws.tokenized, ws.tokens_bin, ws.tokens_meta]: p.unlink()
    made = {n: (getattr(ws, n).relative_to(root)) for n in ('tokenizer_model', 'tokenizer_vocab', 'tokenized', 'tokens_bin')}
    others = {k: v for k, v in files(root).items() if v is not None}
    window = max(1.0, prepared.seconds['tokenize'])
    for i, (sig, u) in enumerate(PLAN['tokenize']):
        what = f'tokenize trial {i} (seed {SEED}): {signal.Signals(sig).name} {u * window:.2f} s after it began'
        code, stderr, landed = interrupt(['tokenize', '--vocab-size', '1024'], ws, sig, u * window, tmp/f'tokenize-{i}')
        check_interrupted(code, stderr, sig, landed, what, resumes=False)
        assert {k: v for k, v in files(root).items() if k in others} == others, f'{what}: something else changed'
        for name, rel in made.items():  # each file is absent or whole: exactly what an uninterrupted run writes
            assert not (root/rel).exists() or sha(root/rel) == prepared.files[str(rel)], f'{what}: {rel} half written'
        if ws.tokens_meta.exists(): assert without_created(ws.tokens_meta) == without_created(prepared.file(
            str(ws.tokens_meta.relative_to(root)))), f'{what}: tokens meta'
        assert lock_holder(ws) is None
        pipeline.status(ws)  # says what it says without failing
    r = llmplay('tokenize', '--vocab-size', '1024', root=root)
    assert r.returncode == 0, r.stderr[-1500:]
    assert_consistent(ws)  # the same tokenizer again: the model fits it
    assert files(root) == {k: v for k, v in prepared.files.items()} | {str(ws.tokens_meta.relative_to(root)): sha(ws.tokens_meta)}


def wiki_article(title: str) -> str:
    body = ' '.join(f'{title} is the subject of sentence {i}, about [[things|other things]].' for i in range(12))
    return f"'''{title}''' is a page.<ref>x</ref> {body}\n\n== More ==\n{body}\n"


def collect_chain(tmp):
    titles = [f'Page {i:03d}' for i in range(120)]
    ws = Workspace(tmp/'collect')
    with FakeMediaWiki({t: wiki_article(t) for t in titles}, content_size=10) as fake:
        fake.delay = 0.03  # about a second of answers: room for a signal to land midway
        cmd = ['collect', '--api-url', fake.url, '--titles', *titles]
        kept: list[str] = []
        for i, (sig, u) in enumerate(PLAN['collect']):
            what = f'collect trial {i} (seed {SEED}): {signal.Signals(sig).name} {u * 2:.2f} s after it began'
            code, stderr, landed = interrupt(cmd, ws, sig, u * 2.0, tmp/f'collect-{i}')
            check_interrupted(code, stderr, sig, landed, what, resumes=False)
            docs = read_documents(ws) if ws.corpus.exists() else []
            got = [d.split('\n', 1)[0] for d in docs]
            assert len(set(got)) == len(got) and set(got) <= set(titles), f'{what}: duplicates or strangers'
            assert got[:len(kept)] == kept, f'{what}: collected articles lost'
            if sig != signal.SIGKILL and docs: assert check_corpus(ws, min_chars=0).ok, f'{what}: {check_corpus(ws, min_chars=0)}'
            assert lock_holder(ws) is None
            kept = got
        r = llmplay(*cmd, root=ws.root)
    assert r.returncode == 0, r.stderr[-1500:]
    got = [d.split('\n', 1)[0] for d in read_documents(ws)]
    assert sorted(got) == titles and check_corpus(ws, min_chars=0).ok
    assert sorted(a['title'] for a in read_json(ws.corpus_meta)['articles']) == titles


def test_killed_at_random_moments(prepared, tmp_path):
    "20 signals (kill -9, Ctrl-C, SIGTERM) at seeded random moments of train, tokenize and collect; then the same command finishes."
    t0 = time.monotonic()
    in_parallel({'train': lambda: train_chain(prepared, tmp_path), 'tokenize': lambda: tokenize_chain(prepared, tmp_path),
                 'collect': lambda: collect_chain(tmp_path)})
    print(f'20 interrupted runs and their recoveries in {time.monotonic() - t0:.0f} s')


# --- concurrent writers ---

def test_concurrent_writers(prepared, tmp_path):
    "A second writer is refused with the holder named (exit 75), or waits with --wait; the log stays ordered, without duplicates."
    root = prepared.copy(tmp_path/'ws')
    ws = Workspace(root)
    for p in [ws.model, ws.train_log, *ws.list_checkpoints()]: p.unlink()
    train = [LLMPLAY, 'train', '--preset', 'tiny', '--set', 'max_steps=100000', 'ckpt_interval=10', '--root', str(root)]
    with open(tmp_path/'a.err', 'w+') as err, open(tmp_path/'b.out', 'w+') as b_out, open(tmp_path/'b.err', 'w+') as b_err:
        a = subprocess.Popen(train, stdout=subprocess.DEVNULL, stderr=err, env=ENV)  # A trains until it is stopped
        started(a, ws)
        b = subprocess.Popen([*train, '--wait'], stdout=b_out, stderr=b_err, env=ENV)  # B waits for A, then goes on
        with ThreadPoolExecutor(2) as pool: refused = list(pool.map(lambda args: llmplay(*args, root=root),
                                                                    (RUN, ['collect', '--source', 'sample'])))
        busy = pipeline.status(ws)['busy']
        assert a.poll() is None, 'A ended before the others were refused'
        a.send_signal(signal.SIGINT)  # Ctrl-C: A saves a checkpoint and stops
        assert a.wait(timeout=300) == 130
        a_stop = max(int(p.stem.split('_')[1]) for p in ws.list_checkpoints())
        started(b, ws)
        time.sleep(1)
        b.send_signal(signal.SIGINT)
        assert b.wait(timeout=300) == 130
        for f in (err, b_out, b_err): f.seek(0)
        one_line(subprocess.CompletedProcess([], 130, '', err.read()), 130, r'^interrupted: run the same command again')
        assert f'resuming from ckpt_{a_stop:07d}.pt' in b_out.read()
        one_line(subprocess.CompletedProcess([], 130, '', b_err.read()), 130, r'^interrupted: run the same command again')
    for r, command in zip(refused, ('run', 'collect')):
        one_line(r, 75, rf'^llmplay {command}: .* is being written by process {a.pid} \(`llmplay train`, since .*--wait')
    assert busy and busy['pid'] == a.pid and busy['command'] == 'llmplay train'
    b_stop = max(int(p.stem.split('_')[1]) for p in ws.list_checkpoints())
    assert_consistent(ws, state=3 if ws.model.exists() else 2)
    assert b_stop >= a_stop and log_steps(ws) == list(range(5, b_stop + 1, 5)), (a_stop, b_stop, log_steps(ws))
    # two collectors at once, both waiting: each adds its file once
    texts = {n: f'The text of file {n}, written for the test of writers that wait. ' * 12 for n in 'xy'}
    for n, t in texts.items(): (tmp_path/f'{n}.txt').write_text(t)
    fresh = Workspace(tmp_path/'fresh')
    procs = [subprocess.Popen([LLMPLAY, 'collect', '--wait', '--source', 'files', '--files', str(tmp_path/f'{n}.txt'),
                               '--root', str(fresh.root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for n in texts]
    for p in procs: assert p.wait(timeout=300) == 0, p.stderr.read()[-1500:]
    assert sorted(read_documents(fresh)) == sorted(t.strip() for t in texts.values())
    assert check_corpus(fresh, min_chars=0).ok


# --- bad inputs: a one-line error, exit 2, nothing changed ---

def collect_flags() -> set[str]:
    "The options `llmplay collect` has (some come with this work: --min-chars, --contact, --encoding)."
    from llmplay.cli import parser
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)).choices['collect']
    return {o for a in sub._actions for o in a.option_strings}


def test_bad_inputs_are_refused_in_one_line(prepared, tmp_path):
    """Bad inputs at the command line: one line, exit 2, the workspace unchanged (more of the collector's in test_collector.py;
    --set values, sampling knobs and missing files in test_pipeline.py)."""
    root = prepared.copy(tmp_path/'ws')
    ws = Workspace(root)
    latin1 = tmp_path/'latin1.txt'
    latin1.write_bytes(('Café crème, naïve façade. ' * 60).encode('latin-1'))
    binary = tmp_path/'photo.txt'
    binary.write_bytes(b'\xff\xd8\xff\xe0\x00\x10JFIF\x00' + bytes(range(256)) * 20)
    pages = {'Topic A': wiki_article('Topic A'), 'Stub': "'''Stub''' is short."}
    fake = FakeMediaWiki(pages).__enter__()
    fake.mangle = lambda params, answer: ({'query': {'pages': ['Topic A']}} if 'titles' in params else answer)
    cases = {  # name: (arguments, environment changes, exit code, the line's pattern)
        'odd API answer': (['collect', '--wait', '--api-url', fake.url, '--titles', 'Topic A'], {}, 2,
                           r'error: http://127.0.0.1:\d+/w/api.php answered in a shape .*query.pages\[0\] is the text'),
        'Latin-1 file': (['collect', '--wait', '--source', 'files', '--files', str(latin1)], {}, 2,
                         r'latin1.txt is not UTF-8 text \(byte 3 is 0xe9\).*--encoding latin-1'),
        'binary file': (['collect', '--wait', '--source', 'files', '--files', str(binary)], {}, 2,
                        r'photo.txt is not a text file \(a NUL byte'),
        'titles for the sample': (['collect', '--wait', '--source', 'sample', '--titles', 'X'], {}, 2,
                                  r'--titles is for the wikipedia source, not sample.*--source sample'),
        'contact': (['collect', '--wait', '--api-url', fake.url, '--titles', 'Topic A'], {'LLMPLAY_CONTACT': 'me'}, 2,
                    r"\$LLMPLAY_CONTACT 'me' is not an e-mail address"),
    }
    def case(name):
        args, env, code, pattern = cases[name]
        one_line(llmplay(*args, root=root, env=ENV | env), code, pattern)
    try:
        in_parallel({name: (lambda name=name: case(name)) for name in cases})
    finally: fake.__exit__(None, None, None)
    r = llmplay('generate', b'\xff\xfeThe', '--max-new-tokens', '5', root=root)  # a prompt that is not UTF-8
    assert r.returncode == 0 and one_line(r, 0, 'the prompt was not valid UTF-8')
    assert files(root) == prepared.files, 'a refused command changed the workspace'
    ws.corpus.write_bytes(b'')  # status --check: 10 + the state
    r = llmplay('status', '--check', root=root)
    assert r.returncode == 10 and 'state 0' in r.stdout


def test_collector_flags(prepared, tmp_path):
    "--encoding, --min-chars and --contact at the command line."
    assert {'--encoding', '--min-chars', '--contact'} <= collect_flags()
    latin1 = tmp_path/'latin1.txt'
    latin1.write_bytes(('Café crème, naïve façade. ' * 60).encode('latin-1'))
    ws = Workspace(tmp_path/'ws')
    r = llmplay('collect', '--source', 'files', '--files', str(latin1), '--encoding', 'latin-1', root=ws.root)
    assert r.returncode == 0 and read_documents(ws)[0].startswith('Café crème'), r.stderr
    with FakeMediaWiki({'Stub': "'''Stub''' is short.", 'Topic A': wiki_article('Topic A')}) as fake:
        r = llmplay('collect', '--api-url', fake.url, '--titles', 'Stub', '--contact', 'ada@example.org', root=ws.root)
        assert r.returncode == 0 and read_documents(ws)[-1] == 'Stub\n\nStub is short.', r.stderr
        assert fake.requests and all('ada@example.org' in q['user_agent'] for q in fake.requests)
        r = llmplay('collect', '--api-url', fake.url, '--search', 'subject', '--min-chars', '100000', root=ws.root)
        assert r.returncode == 0 and len(read_documents(ws)) == 2, r.stderr  # Topic A found, but too short for a crawl
        r = llmplay('collect', '--api-url', fake.url, '--search', 'subject', '--min-chars', '10', root=ws.root)
        assert r.returncode == 0 and read_documents(ws)[-1].startswith('Topic A'), r.stderr
    one_line(llmplay('collect', '--api-url', 'http://127.0.0.1:9/w/api.php', '--contact', 'nobody', root=ws.root), 2,
             r"contact 'nobody' is not an e-mail address")


# --- bugs the trials found, each with its minimal reproduction (regression tests) ---

def test_ctrl_c_while_starting_is_quiet(tmp_path):
    p = subprocess.Popen([LLMPLAY, 'status', '--root', str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=ENV)
    time.sleep(0.5)  # Python is up, torch is still importing
    assert p.poll() is None
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert 'Traceback' not in err, err[-400:]


def test_signal_while_exiting_is_quiet(tmp_path):
    (tmp_path/'hook').mkdir()  # an exit handler that sends the signal at that moment, every time
    (tmp_path/'hook/sitecustomize.py').write_text('import atexit, os, signal\n'
                                                  'atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))\n')
    r = llmplay('status', root=tmp_path/'ws', env=ENV | {'PYTHONPATH': str(tmp_path/'hook')})
    assert r.returncode == 0 and 'state 0' in r.stdout, r.stderr[-300:]
    assert 'Traceback' not in r.stderr, r.stderr[-400:]


def test_run_adds_to_a_small_corpus(tmp_path):
    ws = Workspace(tmp_path/'ws')
    for n in 'ab': (tmp_path/f'{n}.txt').write_text(f'My own notes, part {n}, kept with care. ' * 40)
    for n in 'ab':  # the first collects a.txt; the second finds that corpus too small, and sets it aside
        assert llmplay('run', '--until', '1', '--source', 'files', '--files', str(tmp_path/f'{n}.txt'), root=ws.root).returncode == 0
    assert 'part a' in ws.corpus.read_text(), f"a.txt's notes were set aside as {ws.corpus.name}.damaged"


def test_vocab_symlink_is_replaced(prepared, tmp_path):
    root = prepared.copy(tmp_path/'ws')
    ws = Workspace(root)
    damage(ws, 'tokenizer_vocab', 'symlink', (0, 0, 0), tmp_path/'outside', Workspace(prepared.root))
    assert llmplay(*RUN, root=root).returncode == 0
    assert not ws.tokenizer_vocab.is_symlink(), 'tokenizer.vocab is still a link to a file outside the workspace'


def test_checkpoint_of_another_step_is_refused(prepared, tmp_path):
    root = prepared.copy(tmp_path/'ws')
    ws = Workspace(root)
    newest, older = ws.list_checkpoints()
    newest.write_bytes(older.read_bytes())
    assert llmplay(*RUN, root=root).returncode == 0
    for c in pipeline.status(ws)['checkpoints']:
        assert not c['ok'] or c['step'] == int(Path(c['path']).stem.split('_')[1]), c


def test_run_refuses_bad_set_values(prepared, tmp_path):
    root = prepared.copy(tmp_path/'ws')
    one_line(llmplay(*RUN, '--set', 'n_layers=3', root=root), 2, r'unknown training setting')


def test_unfinished_model_of_a_finished_run_is_finished(prepared, tmp_path):
    root = prepared.copy(tmp_path/'ws')
    ws = Workspace(root)
    saved = load_payload(ws.model, MODEL)  # what the kill leaves: the finished checkpoint, the model not yet marked
    saved.pop('kind'), saved.pop('report', None)
    save_payload(ws.model, MODEL, {**saved, 'run_finished': False})
    assert not pipeline.status(ws)['model']['run_finished']
    assert llmplay(*RUN, root=root).returncode == 0
    assert pipeline.status(ws)['model']['run_finished'], 'still "did not finish: `llmplay run` resumes it"'


def test_changed_tokenizer_is_restored_not_retrained(prepared, tmp_path):
    from llmplay.tokenizer import Tokenizer, vocab_text
    root = prepared.copy(tmp_path/'ws')
    ws = Workspace(root)
    data = ws.tokenizer_model.read_bytes()
    listing = vocab_text(Tokenizer(data))
    for i in range(len(data) - 80, len(data)):  # the first one-bit change near the end that keeps the listing
        changed = bytearray(data)
        changed[i] ^= 2
        try:
            if vocab_text(Tokenizer(bytes(changed))) == listing: break
        except ValueError: pass
    ws.tokenizer_model.write_bytes(bytes(changed))
    assert llmplay(*RUN, root=root).returncode == 0
    assert files(root)['models/gpt_model.pth'] == prepared.files['models/gpt_model.pth'], 'the healthy model was retrained'


def test_progress_bar_past_its_total(prepared, tmp_path):
    root = prepared.copy(tmp_path/'ws')  # its run finished at step 40
    r = llmplay('train', '--preset', 'tiny', '--set', 'max_steps=20', root=root)
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr[-600:]

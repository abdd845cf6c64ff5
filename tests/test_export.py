"""`llmplay export`: a trained model of each kind of positions, exported as a Hugging Face transformers folder, computes
what llmplay computes: the same ids, the same logits (to 1e-4), the same greedy tokens; also in a fresh venv that has
torch and transformers but neither llmplay nor sentencepiece.

The models are tiny (the `tiny` preset) with a context of 80 tokens, so that a prompt and 50 new tokens fit: past its
context llmplay slides its window, which transformers does not do.
"""
import hashlib, json, os, random, shutil, signal, subprocess, sys, time, venv
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip('transformers')  # the dev extra installs it (and the `export` extra)
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
from safetensors import safe_open
from safetensors.torch import load_file

from llmplay import pipeline
from llmplay.cli import main
from llmplay.export import FILES, MARKER, architecture, check_export, export, export_problem, hf_weights, read_marker
from llmplay.generation import SamplingSettings, generate
from llmplay.model import GPTConfig
from llmplay.tokenizer import load_tokens
from llmplay.data import read_documents
from llmplay.workspace import Workspace

TORCH = os.environ.get('LLMPLAY_TORCH', 'torch==2.13.0')  # as dev.py: this machine's local CPU wheel
KINDS = {'rotary': 'GPTNeoXForCausalLM', 'learned': 'GPT2LMHeadModel'}
PROMPT = 'The 3 kinds of ▁ café'
TRICKY = ['', ' ', '   leading and trailing   ', '12345 67.89 1_000_000', '\n', '\n\n\n', 'a\tb\t\tc\r\n', 'emoji 😀🎉 👍🏽',
          '▁', 'a▁b ▁ ▁▁c', 'café naïve Ångström Straße', '中文 日本語 한국어', '</s> <s> <pad> <unk> <0x41>', '\x00\x01\x7f',
          '\u200b\u00a0\u3000', 'Tokens:\n\t  x = 1_000 → café ▁ 😀\n\n']


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    "kind -> (workspace, its `Trained` on the CPU, its exported folder), for a tiny model with rotary and one with learned positions."
    out, first = {}, None
    for kind in KINDS:
        ws = Workspace(tmp_path_factory.mktemp(f'ws-{kind}'))
        if first:  # the same text and tokenizer: only the training differs
            for name in ('corpus', 'corpus_meta', 'tokenizer_model', 'tokenizer_vocab', 'tokenized', 'tokens_bin', 'tokens_meta'):
                getattr(ws, name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(getattr(first, name), getattr(ws, name))
        pipeline.run(ws, preset='tiny', source='sample', vocab_size=1024, progress=False,
                     train_kw={'block_size': 80, 'rope': kind == 'rotary'})
        out[kind] = ws, pipeline.load(ws, device='cpu'), export(ws, tmp_path_factory.mktemp(f'hf-{kind}')/'model')
        first = first or ws
    return out


@pytest.fixture(scope='module')
def hf_models(exported):
    return {kind: AutoModelForCausalLM.from_pretrained(d, output_loading_info=True) for kind, (_, _, d) in exported.items()}


def llmplay_greedy(model, ids, n):
    "llmplay's n greedy tokens after `ids` (its KV-cache decoder; it does not stop at eos)."
    with torch.inference_mode(): return model.generate(torch.tensor([ids]), n, temperature=0)[0, len(ids):].tolist()


@pytest.mark.parametrize('kind', KINDS)
def test_folder_loads_with_every_weight(exported, hf_models, kind):
    ws, trained, d = exported[kind]
    assert sorted(p.name for p in d.iterdir()) == sorted([*FILES, MARKER]) and export_problem(d) is None
    assert json.loads((d/'config.json').read_text())['architectures'] == [KINDS[kind]] == [architecture(trained.model.config)]
    model, info = hf_models[kind]
    assert type(model).__name__ == KINDS[kind]
    assert not info['missing_keys'] and not info['unexpected_keys'] and not info['mismatched_keys'], info
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()  # tied
    with safe_open(d/'model.safetensors', framework='pt') as f: meta = f.metadata()
    theirs, expected = load_file(d/'model.safetensors'), hf_weights(trained.model)
    assert theirs.keys() == expected.keys() and meta['format'] == 'pt' and meta['step'] == str(trained.info['step'])
    assert all(torch.equal(theirs[k], expected[k]) and theirs[k].dtype == torch.float32 for k in theirs)
    hf_sd = model.state_dict()
    assert all(torch.equal(hf_sd[k], expected[k]) for k in expected)  # transformers holds exactly what was written


@pytest.mark.parametrize('kind', KINDS)
def test_logits_match(exported, hf_models, kind):
    ws, trained, _ = exported[kind]
    model, hf = trained.model, hf_models[kind][0]
    tokens = torch.from_numpy(load_tokens(ws)[:4 * 80].astype('int64'))
    g = torch.Generator().manual_seed(0)
    batches = [tokens.view(4, 80),  # real text, the whole context
               torch.randint(0, model.config.vocab_size, (2, 80), generator=g),  # any ids
               torch.tensor([[trained.tokenizer.eos_id] + trained.tokenizer.encode(PROMPT)])]
    for x in batches:
        with torch.inference_mode():
            ours, theirs = model(x, targets=x)[0], hf(x).logits
        diff = (ours - theirs).abs().max().item()
        print(f'{kind}: {tuple(x.shape)}: largest logit difference {diff:.1e}')
        assert ours.shape == theirs.shape and diff < 1e-4


@pytest.mark.parametrize('kind', KINDS)
def test_greedy_50_tokens_match(exported, hf_models, kind):
    _, trained, d = exported[kind]
    tok, model, hf = trained.tokenizer, trained.model, hf_models[kind][0]
    ids = [tok.eos_id] + tok.encode(PROMPT)
    assert len(ids) + 50 <= model.config.block_size
    ours = llmplay_greedy(model, ids, 50)
    with torch.inference_mode():
        theirs = hf.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), max_new_tokens=50,
                             do_sample=False, repetition_penalty=1.0, eos_token_id=None)[0, len(ids):].tolist()
    print(f'{kind}: {tok.decode(ours)!r}')
    assert len(ours) == len(theirs) == 50 and ours == theirs
    # the way each side's users generate greedily: llmplay's `generate` and `model.generate`, both stopping at </s>
    hf_tok = AutoTokenizer.from_pretrained(d)
    inputs = hf_tok(PROMPT, return_tensors='pt')
    with torch.inference_mode():
        out = hf.generate(**inputs, do_sample=False, repetition_penalty=1.0, max_new_tokens=50)
    text = generate(model, tok, PROMPT, greedy=True, repetition_penalty=1.0, max_new_tokens=50, precision='fp32')
    assert hf_tok.decode(out[0], skip_special_tokens=True) == PROMPT + text


def test_tokenizer_gives_llmplays_ids(exported):
    ws, trained, d = exported['rotary']
    tok, hf_tok = trained.tokenizer, AutoTokenizer.from_pretrained(d)
    texts = read_documents(ws) + TRICKY
    assert len(texts) > 300
    t = time.time()
    differ = [s for s in texts if hf_tok(s)['input_ids'] != [tok.eos_id] + tok.encode(s)]
    assert not differ, f'{len(differ)} texts encode differently, e.g. {differ[0][:80]!r}'
    assert all(hf_tok.encode(s, add_special_tokens=False) == tok.encode(s) for s in TRICKY)
    wrong = [s for s in texts if hf_tok.decode(hf_tok(s)['input_ids'], skip_special_tokens=True) != s]
    assert not wrong, f'{len(wrong)} texts do not decode back, e.g. {wrong[0][:80]!r}'
    print(f'{len(texts)} texts, {sum(map(len, texts)):,} characters: the same ids and text back ({time.time() - t:.1f}s)')
    assert hf_tok.eos_token_id == hf_tok.bos_token_id == tok.eos_id and hf_tok.pad_token_id == tok.pad_id
    assert hf_tok.model_max_length == trained.model.config.block_size
    assert exported['learned'][2].joinpath('tokenizer.json').read_bytes() == d.joinpath('tokenizer.json').read_bytes()


def test_generation_config_and_card(exported, hf_models):
    ws, trained, d = exported['rotary']
    s, g = SamplingSettings(), GenerationConfig.from_pretrained(d)
    assert (g.do_sample, g.temperature, g.top_k, g.top_p, g.repetition_penalty) == (True, s.temperature, 0, s.top_p, s.repetition_penalty)
    assert g.min_p is None and g.eos_token_id == g.bos_token_id == trained.tokenizer.eos_id
    assert g.max_new_tokens == min(s.max_new_tokens, trained.model.config.block_size // 2)
    assert hf_models['rotary'][0].generation_config.top_k == 0  # not transformers' 50
    card = (d/'README.md').read_text()
    info, meta = trained.info, json.loads(ws.corpus_meta.read_text())
    for fact in ['library_name: transformers', 'GPTNeoXForCausalLM', f"{info['val_bpb']:.3f} bits per byte",
                 f"| steps | {info['report']['steps']:,}", 'license_name: psf-2.0', meta['license'], '1,024 pieces', '| context | 80 tokens |',
                 meta['articles'][0]['title'], trained.tokenizer.sha256]:
        assert fact in card, fact
    assert str(ws.root) not in card  # no local path leaks into what is shared
    assert 'learned' in (exported['learned'][2]/'README.md').read_text()


@pytest.mark.parametrize('kind', KINDS)
def test_check_export(exported, kind):
    _, trained, d = exported[kind]
    r = check_export(d, trained, PROMPT)
    assert r['ok'] and r['ids_equal'] and r['greedy_equal'] and r['max_logit_diff'] < 1e-4, r
    assert r['new_tokens'] == 50 and r['text'].startswith(PROMPT)


def test_export_refuses_what_it_cannot_do(exported, tmp_path):
    ws, _, d = exported['rotary']
    assert export(ws, d) == d  # an earlier export is replaced
    (tmp_path/'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='notes.txt'): export(ws, tmp_path)
    with pytest.raises(FileExistsError, match='is a file'): export(ws, tmp_path/'notes.txt')
    assert (tmp_path/'notes.txt').read_text() == 'mine' and sorted(p.name for p in tmp_path.iterdir()) == ['notes.txt']
    from dataclasses import make_dataclass
    Wider = make_dataclass('Wider', [('mlp_ratio', int, 4)], bases=(GPTConfig,))
    with pytest.raises(ValueError, match='mlp_ratio'):  # a setting no mapping knows, away from its default
        architecture(Wider(vocab_size=8, block_size=8, n_layer=1, n_head=1, n_embd=8, mlp_ratio=3))
    with pytest.raises(ValueError, match='qk_norm'):
        architecture(GPTConfig(vocab_size=8, block_size=8, n_layer=1, n_head=1, n_embd=8, qk_norm=True))
    with pytest.raises(FileNotFoundError): export(Workspace(tmp_path/'empty'), tmp_path/'out')


def tree(d) -> dict:
    "name -> SHA-256 of every file in the folder `d`."
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(d).iterdir()) if p.is_file()}


def same_export(d: Path, ref: Path) -> bool:
    "Whether the folder `d` holds the export in `ref`: the card aside (it says when), weights compared as tensors."
    got, want = tree(d), tree(ref)  # (safetensors writes its metadata in no fixed order)
    if any(got.get(n) != want[n] for n in FILES if n not in ('README.md', 'model.safetensors')): return False
    a, b = load_file(d/'model.safetensors'), load_file(ref/'model.safetensors')
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def leftovers(d: Path) -> list[str]:
    return [p.name for p in d.parent.iterdir() if '.llmplay-' in p.name]


def test_users_files_are_never_overwritten(exported, tmp_path, capsys):
    ws, _, ref = exported['rotary']
    d = tmp_path/'mine'
    (d/'.git').mkdir(parents=True)
    mine = {'README.md': 'my notes', 'config.json': '{"mine": true}', 'tokenizer.json': '{}', 'notes.txt': 'mine',
            '.git/HEAD': 'ref: refs/heads/main'}
    for name, text in mine.items(): (d/name).write_text(text)
    with pytest.raises(FileExistsError, match='--replace'): export(ws, d)
    assert main(['export', str(d), '--root', str(ws.root), '--no-check']) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'choose a new or empty folder, or --replace' in err, err
    assert all((d/n).read_text() == t for n, t in mine.items()) and not leftovers(d)
    assert main(['export', str(d), '--root', str(ws.root), '--no-check', '--replace']) == 0
    kept = {n: t for n, t in mine.items() if n.split('/')[0] not in FILES}  # notes.txt, .git
    assert sorted(p.name for p in d.iterdir()) == sorted([*FILES, MARKER, 'notes.txt', '.git'])
    assert export_problem(d) is None and sorted(read_marker(d)) == sorted(FILES) and same_export(d, ref)
    assert all((d/n).read_text() == t for n, t in kept.items())
    export(ws, d, replace=True)  # again: its own earlier export, beside the user's files
    assert export_problem(d) is None and all((d/n).read_text() == t for n, t in kept.items()) and not leftovers(d)
    with pytest.raises(FileExistsError, match='notes.txt'): export(ws, d)  # still refused without --replace


def test_earlier_export_is_replaced(exported, tmp_path):
    (_, _, old), (ws, _, new) = exported['learned'], exported['rotary']
    d = Path(shutil.copytree(old, tmp_path/'model'))
    assert export_problem(d) is None and tree(d) == tree(old)
    export(ws, d)
    got = tree(d)
    assert export_problem(d) is None and sorted(got) == sorted([*FILES, MARKER]) and not leftovers(d)
    assert same_export(d, new) and not same_export(d, old)


def test_interrupted_replace_is_marked_incomplete(exported, tmp_path, monkeypatch):
    (_, _, old), (ws, trained, _) = exported['learned'], exported['rotary']
    d = Path(shutil.copytree(old, tmp_path/'model'))
    (d/'notes.txt').write_text('mine')
    real, moved = os.replace, []
    def crash(src, dst):  # a crash after three files of the new export are in
        if Path(dst).parent == d and len(moved) == 3: raise KeyboardInterrupt
        moved.append(dst); real(src, dst)
    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt): export(ws, d, replace=True)
    monkeypatch.undo()
    assert 'incomplete' in export_problem(d) and 'export into it again' in export_problem(d)
    with pytest.raises(ValueError, match='incomplete'): check_export(d, trained)
    export(ws, d, replace=True)
    assert export_problem(d) is None and (d/'notes.txt').read_text() == 'mine' and not leftovers(d)


KILLED = """
import os, shutil, signal, sys
import llmplay.export as e
from llmplay.cli import main
left = steps = int(os.environ['KILL_AT_STEP'])
def step(f):
    def killed_before(*a, **k):
        global left
        left -= 1
        if left < 0: os.kill(os.getpid(), signal.SIGKILL)
        return f(*a, **k)
    return killed_before
os.fsync, os.rename, os.replace, shutil.rmtree, e._exchange = map(step, (os.fsync, os.rename, os.replace, shutil.rmtree,
                                                                          e._exchange))
code = main(sys.argv[1:])
print('steps', steps - left)
sys.exit(code)
"""


@pytest.mark.parametrize('mode', ['whole', 'replace'])
def test_kill_9_leaves_the_old_or_the_new_export(exported, tmp_path, mode):
    "`llmplay export` killed at random moments (a time, or a step: a write, a rename, a removal) in seeded trials."
    (_, _, old), (ws, _, new) = exported['learned'], exported['rotary']
    d = tmp_path/'model'
    cmd = [sys.executable, '-c', KILLED, 'export', str(d), '--root', str(ws.root), '--no-check']
    cmd += ['--replace'] if mode == 'replace' else []
    env = {k: v for k, v in os.environ.items() if k not in ('LLMPLAY_ROOT', 'IN_TEST')}
    def reset():  # the earlier export (and, for --replace, a file of the user's beside it)
        shutil.rmtree(d, ignore_errors=True); shutil.copytree(old, d)
        if mode == 'replace': (d/'notes.txt').write_text('mine')
    reset()
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env | {'KILL_AT_STEP': str(10**6)}, timeout=300)
    assert r.returncode == 0, r.stderr
    seconds, steps = time.time() - t0, int(r.stdout.split('steps ')[-1])
    assert steps >= 10 and export_problem(d) is None and same_export(d, new)
    landed = []
    for seed in range(8):
        rng = random.Random(f'{mode} {seed}')
        reset()
        at_step = rng.randrange(steps) if seed % 4 else 10**6  # 6 steps, 2 moments
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env | {'KILL_AT_STEP': str(at_step)})
        if at_step == 10**6:  # a moment in time: most land while it starts and computes, some while it writes
            time.sleep(rng.uniform(0.5, 1.0) * seconds)
            p.send_signal(signal.SIGKILL)
        p.wait(timeout=300)
        got, problem = tree(d), export_problem(d)
        what = f'seed {seed} (step {at_step}, exit {p.returncode}): {problem}'
        landed.append(p.returncode == -signal.SIGKILL)
        print(what)
        if mode == 'whole' or problem is None:
            assert problem is None and (same_export(d, old) or same_export(d, new)), what
            assert sorted(set(got) - {'notes.txt'}) == sorted([*FILES, MARKER]), what
        else: assert 'incomplete' in problem or 'not a whole' in problem, what
        if mode == 'replace': assert (d/'notes.txt').read_text() == 'mine', what
    assert sum(landed) >= 5, landed
    assert subprocess.run(cmd, capture_output=True, env=env | {'KILL_AT_STEP': str(10**6)}, timeout=300).returncode == 0
    assert export_problem(d) is None and same_export(d, new) and not leftovers(d)


def test_core_does_not_import_transformers(tmp_path):
    code = ('import sys, llmplay.export, llmplay.pipeline, llmplay.cli; '
            'print([m for m in ("transformers", "tokenizers") if m in sys.modules])')  # safetensors is a core requirement
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == '[]', r.stdout + r.stderr


FRESH = '''
import importlib.util, json, sys
assert importlib.util.find_spec('llmplay') is None and importlib.util.find_spec('sentencepiece') is None, 'not a clean venv'
import torch, transformers
from transformers import AutoModelForCausalLM, AutoTokenizer
out = {}
for kind, path in json.loads(sys.argv[1]).items():
    tok, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
    inputs = tok(sys.argv[2], return_tensors='pt')
    greedy = model.generate(**inputs, max_new_tokens=50, do_sample=False, repetition_penalty=1.0, eos_token_id=None)
    torch.manual_seed(0)
    sampled = model.generate(**inputs)  # generation_config.json's sampling defaults
    out[kind] = dict(model=type(model).__name__, ids=inputs['input_ids'][0].tolist(), greedy=greedy[0].tolist(),
                     text=tok.decode(greedy[0], skip_special_tokens=True), sampled=sampled.size(1) - inputs['input_ids'].size(1))
print(json.dumps({'versions': [torch.__version__, transformers.__version__], 'models': out}))
'''


def test_loads_in_a_fresh_venv_without_llmplay(exported, tmp_path):
    t0 = time.time()
    env_dir = tmp_path/'venv'
    venv.create(env_dir, with_pip=True)
    py = env_dir/('Scripts' if os.name == 'nt' else 'bin')/'python'
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV', 'IN_TEST', 'LLMPLAY_ROOT')}
    env['HF_HUB_OFFLINE'] = '1'  # a folder on disk: nothing to fetch
    pins = tmp_path/'constraints.txt'
    pins.write_text(TORCH + '\n')
    r = subprocess.run([py, '-m', 'pip', 'install', '--disable-pip-version-check', '-q', '--no-compile', '-c', pins,
                        TORCH, 'transformers'],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    t_install = time.time() - t0
    folders = {kind: str(d) for kind, (_, _, d) in exported.items()}
    r = subprocess.run([py, '-c', FRESH, json.dumps(folders), PROMPT], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got['versions'][0].startswith(TORCH.split('==')[-1]), f"pip replaced the local torch: {got['versions']}"
    for kind, (_, trained, _) in exported.items():
        tok, m = trained.tokenizer, got['models'][kind]
        ids = [tok.eos_id] + tok.encode(PROMPT)
        assert m['model'] == KINDS[kind] and m['ids'] == ids
        assert m['greedy'][len(ids):] == llmplay_greedy(trained.model, ids, 50), kind
        assert m['text'] == PROMPT + tok.decode(m['greedy'][len(ids):]) or '\ufffd' in m['text']
        assert 0 < m['sampled'] <= trained.model.config.block_size // 2
    print(f"fresh venv with torch {got['versions'][0]}, transformers {got['versions'][1]}: installed in {t_install:.0f}s, "
          f'both models load and give llmplay\'s greedy tokens ({time.time() - t0:.0f}s in all)')

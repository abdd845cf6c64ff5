"""The Streamlit chat (llmplay/app.py), run headless with Streamlit's AppTest on a workspace trained with the tiny preset."""
import json, os, re, shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import llmplay.app as app
from llmplay import chat, cli, generation, pipeline
from llmplay.generation import SamplingSettings
from llmplay.widgets import Sampler
from llmplay.workspace import ROOT_ENV, Workspace

SCRIPT = 'from llmplay.app import main\nmain()'
STAGE_2 = ('corpus', 'corpus_meta', 'tokenizer_model', 'tokenizer_vocab', 'tokenized', 'tokens_bin', 'tokens_meta')


@pytest.fixture(scope='module')
def ws(trained): return trained


def start(root, monkeypatch, **widgets) -> AppTest:
    "The app on the workspace at `root`, with the widgets set as `widgets` (key=value)."
    monkeypatch.setenv(ROOT_ENV, str(root))
    at = AppTest.from_string(SCRIPT, default_timeout=60).run()
    assert not at.exception
    for key, value in widgets.items():
        at.get_by_key(key).set_value(value)
    if widgets: at.run()
    assert not at.exception
    return at


def say(at, text) -> AppTest:
    at.chat_input(key='prompt').set_value(text).run()
    assert not at.exception
    return at


def click(at, key) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception
    return at


def history(at): return at.session_state['history']
def replies(at): return [m['replies'][0]['text'] for m in history(at) if m['role'] == 'assistant']
def html_text(at): return '\n'.join(h.value for h in at.html)


def test_reply_streams_into_the_history(ws, monkeypatch):
    at = start(ws.root, monkeypatch, max_new_tokens=16)
    assert 'base model' in html_text(at) and 'continues your text' in html_text(at)  # the visible note
    say(at, 'The')
    h = history(at)
    assert [m['role'] for m in h] == ['user', 'assistant'] and h[0]['text'] == 'The'
    r = h[1]['replies'][0]
    assert r['done'] and not r['stopped'] and 1 <= len(r['tokens']) <= 16 and r['first_ms'] > 0
    assert r['text'] == ''.join(t[0] for t in r['tokens'])
    assert chat.text_html(r['text']) in html_text(at) and f"{len(r['tokens'])} token" in html_text(at)
    say(at, 'Then')  # the conversation so far is the context of the next reply
    assert [m['role'] for m in history(at)] == ['user', 'assistant'] * 2


def test_greedy_gives_the_same_reply_twice(ws, monkeypatch):
    at = start(ws.root, monkeypatch, strategy='Greedy', max_new_tokens=20)
    assert at.slider(key='temperature').disabled and at.number_input(key='seed').disabled
    first = replies(say(at, 'A list is'))[0]
    again = replies(click(at, 'regenerate'))
    assert again == [first] and len(history(at)) == 2
    t = app.load(ws)
    assert first == generation.generate(t.model, t.tokenizer, 'A list is', greedy=True, max_new_tokens=20)


def test_regenerate_replaces_the_last_reply(ws, monkeypatch):
    at = start(ws.root, monkeypatch, seed=1, max_new_tokens=30)
    first = replies(say(at, 'The'))
    at.number_input(key='seed').set_value(2).run()
    second = replies(click(at, 'regenerate'))
    assert len(history(at)) == 2 and len(second) == 1 and second != first
    at.number_input(key='seed').set_value(1).run()
    assert replies(click(at, 'regenerate')) == first  # the same seed: the same reply


def test_clear_empties_the_history(ws, monkeypatch):
    at = start(ws.root, monkeypatch, max_new_tokens=8)
    say(say(at, 'The'), 'A ')
    assert len(history(at)) == 4 and not at.button(key='clear').disabled
    click(at, 'clear')
    assert history(at) == [] and at.button(key='clear').disabled and at.button(key='regenerate').disabled


def test_bad_values_are_rejected(ws, monkeypatch):
    at = start(ws.root, monkeypatch)
    for key, bad in [('temperature', 5.0), ('top_p', 0.0), ('max_new_tokens', 5000), ('seed', -5)]:
        at.get_by_key(key).set_value(bad).run()  # refused: the knob keeps its default
        assert not at.exception and at.get_by_key(key).value == getattr(SamplingSettings(), key), key
    with pytest.raises(ValueError, match='temperature must be'):
        SamplingSettings(temperature=-1)
    # a conversation file that is not one is refused, and the conversation stays as it was
    at.slider(key='max_new_tokens').set_value(8)
    say(at, 'The')
    before = history(at)
    for name, data in [('junk.json', b'not json'), ('other.json', b'{"format": "other", "messages": []}'),
                       ('bad.json', json.dumps({'format': 'llmplay-chat', 'messages': [{'role': 'robot'}]}).encode())]:
        at.file_uploader[0].set_value((name, data, 'application/json')).run()
        assert not at.exception and history(at) == before
        assert any(name in e.value and 'was not loaded' in e.value for e in at.error)


def test_save_and_load_a_conversation(ws, monkeypatch):
    at = start(ws.root, monkeypatch, max_new_tokens=10, seed=3)
    say(at, 'The')
    info = app.load(ws).info
    saved = chat.history_json(history(at), ws, info)
    assert json.loads(saved)['model']['step'] == info['step']
    other = start(ws.root, monkeypatch)
    other.file_uploader[0].set_value(('chat.json', saved.encode(), 'application/json')).run()
    assert not other.exception and not other.error
    assert history(other) == history(at) and chat.text_html(replies(at)[0]) in html_text(other)


def test_probability_view_and_compare_mode(ws, monkeypatch):
    at = start(ws.root, monkeypatch, max_new_tokens=12, seed=0)
    say(at, 'The')
    at.toggle(key='probs').set_value(True).run()
    tokens = history(at)[1]['replies'][0]['tokens']
    shown = html_text(at)
    assert shown.count('class="lp-tok"') == sum(1 for t in tokens if t[0]) and 'lp-tip' in shown and 'lp-legend' in shown
    at.toggle(key='compare').set_value(True).run()
    assert at.multiselect(key='strategies').value == ['Greedy', 'Sidebar settings', 'Creative']
    say(at, 'A list is')
    m = history(at)[-1]
    assert [r['label'] for r in m['replies']] == ['Greedy', 'Sidebar settings', 'Creative'] and all(r['done'] for r in m['replies'])
    t = app.load(ws)
    context = chat.context_of(history(at)[:-1])
    assert m['replies'][0]['text'] == generation.generate(t.model, t.tokenizer, context, greedy=True, max_new_tokens=12)
    assert all(f'>{label}<' in html_text(at).replace('</div>', '<') for label in ['Greedy', 'Creative'])


def test_stop_keeps_what_the_reply_had(ws, monkeypatch):
    "Stop pressed while a reply streams: the page reruns with the reply unfinished in the history; it keeps its tokens."
    at = start(ws.root, monkeypatch)
    cut = dict(chat.new_reply('Sidebar settings', SamplingSettings()), text='half a',
               tokens=[['half', 0.5, '▁half', [['▁half', 0.5]]], [' a', 0.4, '▁a', [['▁a', 0.4]]]])
    at.session_state['history'] = [{'role': 'user', 'text': 'The'}, {'role': 'assistant', 'replies': [cut]}]
    click(at, 'stop')
    r = history(at)[1]['replies'][0]
    assert r['stopped'] and r['done'] and r['text'] == 'half a' and len(r['tokens']) == 2 and 'lp-stopped' in html_text(at)
    assert not at.session_state['pending'] and len(history(at)) == 2  # and no new reply was started


def test_the_model_is_reloaded_when_its_file_changes(ws):
    m1 = app.load(ws).model
    assert app.load(ws).model is m1
    data = ws.model.read_bytes()
    ws.model.unlink(); ws.model.write_bytes(data)  # a new file, as training writes it
    os.utime(ws.model, ns=(ws.model.stat().st_atime_ns, ws.model.stat().st_mtime_ns + 10**9))
    m2 = app.load(ws).model
    assert m2 is not m1 and app.load(ws).model is m2


def test_without_a_model_the_app_shows_the_fix(ws, tmp_path, monkeypatch):
    empty = tmp_path/'empty'
    empty.mkdir()
    at = start(empty, monkeypatch)
    assert 'state 0' in html_text(at) and any(c.value == f'llmplay run --root {empty}' for c in at.code)
    assert at.button(key='build') and not at.chat_input
    # at state 2, the Build button trains the missing model and the chat appears
    w2 = Workspace(tmp_path/'half')
    for a in STAGE_2:
        getattr(w2, a).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(getattr(ws, a), getattr(w2, a))
    at = start(w2.root, monkeypatch)
    assert 'state 2' in html_text(at) and any(c.value == f'llmplay run --root {w2.root}' for c in at.code)
    at.selectbox(key='build_preset').set_value('tiny').run()
    click(at, 'build')
    assert pipeline.status(w2)['state'] == 3 and at.chat_input(key='prompt') is not None


def test_the_workspace_comes_from_the_command_line():
    assert app.app_args(['--root', '/tmp/x', '--precision', 'fp32']) == (Workspace('/tmp/x'), 'fp32')
    cmd = cli.chat_command(Workspace('/tmp/x'), precision='bf16')
    assert cmd[cmd.index('--') + 1:] == ['--root', '/tmp/x', '--precision', 'bf16'] and Path(cmd[4]) == Path(app.__file__)


def test_cli_chat_and_widget_show_the_same_defaults_and_limits(ws, monkeypatch):
    "One owner of the sampling settings: the CLI's flags, the chat's sliders and the widget's sliders agree with it."
    knobs = {k.name: k for k in SamplingSettings.knobs()}
    args = cli.parser().parse_args(['generate', 'x'])
    assert cli.sampling_settings(args) == SamplingSettings()
    sub = next(a for a in cli.parser()._actions if a.dest == 'command')
    shown = ' '.join(sub.choices['generate'].format_help().split())  # argparse wraps lines
    assert all(f'from {k.lo:g} to {k.hi:g}; default: {"none" if k.default is None else k.default}' in shown
               for k in knobs.values() if k.kind is not bool)
    at = start(ws.root, monkeypatch)
    assert app_settings(at) == SamplingSettings()
    for name, k in knobs.items():
        if name in ('greedy', 'seed'): continue
        s = at.slider(key=name)
        assert (s.value, s.min, s.max, s.step, s.help) == (k.default, k.lo, k.hi, k.step, k.help), name
    t = app.load(ws)
    w = Sampler(t.model, t.tokenizer)
    assert w.settings() == SamplingSettings()
    for name, k in knobs.items():
        if k.kind in (int, float) and name != 'seed':
            assert (w.knobs[name].min, w.knobs[name].max, w.knobs[name].step) == (k.lo, k.hi, k.step), name


def app_settings(at) -> SamplingSettings:
    s = at.session_state
    return SamplingSettings(greedy=s['strategy'] == 'Greedy', **{k.name: s[k.name] for k in SamplingSettings.knobs() if k.kind is not bool})


def test_app_imports_are_absolute():
    "Streamlit runs app.py as a script, where a relative import fails: every llmplay import in it is absolute."
    source = (Path(app.__file__)).read_text()
    assert not re.search(r'^\s*from \.', source, re.M), 'a relative import in app.py: use `import llmplay.X as X`'

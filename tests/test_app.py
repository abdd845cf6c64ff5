"""The Streamlit chat (llmplay/app.py), run headless with Streamlit's AppTest on a workspace trained with the tiny preset."""
import json, os, shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import llmplay.app as app
from llmplay import generation, pipeline
from llmplay.workspace import ROOT_ENV, Workspace

SCRIPT = 'from llmplay.app import main\nmain()'
STAGE_2 = ('corpus', 'corpus_meta', 'tokenizer_model', 'tokenizer_vocab', 'tokenized', 'tokens_bin', 'tokens_meta')


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    ws = Workspace.at(tmp_path_factory.mktemp('chat'))
    pipeline.run(ws, preset='tiny', source='sample', vocab_size=1024, log=lambda msg: None)
    assert pipeline.status(ws)['state'] == 3
    return ws


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
    say(at, 'The ')
    h = history(at)
    assert [m['role'] for m in h] == ['user', 'assistant'] and h[0]['text'] == 'The '
    r = h[1]['replies'][0]
    assert r['done'] and not r['stopped'] and 1 <= len(r['tokens']) <= 16 and r['first_ms'] > 0
    assert r['text'] == ''.join(t[0] for t in r['tokens'])
    assert app.text_html(r['text']) in html_text(at) and f"{len(r['tokens'])} token" in html_text(at)
    say(at, 'Then')  # the conversation so far is the context of the next reply
    assert [m['role'] for m in history(at)] == ['user', 'assistant'] * 2


def test_greedy_gives_the_same_reply_twice(ws, monkeypatch):
    at = start(ws.root, monkeypatch, strategy='Greedy', max_new_tokens=20)
    assert at.slider(key='temperature').disabled and at.number_input(key='seed').disabled
    first = replies(say(at, 'A list is'))[0]
    again = replies(click(at, 'regenerate'))
    assert again == [first] and len(history(at)) == 2
    model, info, tok = app.load_model(ws)
    assert first == generation.generate(model, tok, 'A list is', greedy=True, max_new_tokens=20, repetition_penalty=1.1)


def test_regenerate_replaces_the_last_reply(ws, monkeypatch):
    at = start(ws.root, monkeypatch, seed=1, max_new_tokens=30)
    first = replies(say(at, 'The '))
    at.number_input(key='seed').set_value(2).run()
    second = replies(click(at, 'regenerate'))
    assert len(history(at)) == 2 and len(second) == 1 and second != first
    at.number_input(key='seed').set_value(1).run()
    assert replies(click(at, 'regenerate')) == first  # the same seed: the same reply


def test_clear_empties_the_history(ws, monkeypatch):
    at = start(ws.root, monkeypatch, max_new_tokens=8)
    say(say(at, 'The '), 'A ')
    assert len(history(at)) == 4 and not at.button(key='clear').disabled
    click(at, 'clear')
    assert history(at) == [] and at.button(key='clear').disabled and at.button(key='regenerate').disabled


def test_bad_values_are_rejected(ws, monkeypatch):
    at = start(ws.root, monkeypatch)
    for key, bad, good in [('temperature', 5.0, 0.8), ('top_p', 0.0, 0.95), ('max_new_tokens', 0, 150), ('seed', -5, None)]:
        at.get_by_key(key).set_value(bad).run()
        assert not at.exception and at.get_by_key(key).value == good, key
    with pytest.raises(ValueError, match='temperature must be'):
        app.check_kwargs(app.stream_kwargs(temperature=-1))
    # a conversation file that is not one is refused, and the conversation stays as it was
    at.slider(key='max_new_tokens').set_value(8)
    say(at, 'The ')
    before = history(at)
    for name, data in [('junk.json', b'not json'), ('other.json', b'{"format": "other", "messages": []}'),
                       ('bad.json', json.dumps({'format': 'llmplay-chat', 'messages': [{'role': 'robot'}]}).encode())]:
        at.file_uploader[0].set_value((name, data, 'application/json')).run()
        assert not at.exception and history(at) == before
        assert any(name in e.value and 'was not loaded' in e.value for e in at.error)


def test_save_and_load_a_conversation(ws, monkeypatch):
    at = start(ws.root, monkeypatch, max_new_tokens=10, seed=3)
    say(at, 'The ')
    model, info, tok = app.load_model(ws)
    saved = app.history_json(history(at), ws, info)
    assert json.loads(saved)['model']['step'] == info['step']
    other = start(ws.root, monkeypatch)
    other.file_uploader[0].set_value(('chat.json', saved.encode(), 'application/json')).run()
    assert not other.exception and not other.error
    assert history(other) == history(at) and app.text_html(replies(at)[0]) in html_text(other)


def test_probability_view_and_compare_mode(ws, monkeypatch):
    at = start(ws.root, monkeypatch, max_new_tokens=12, seed=0)
    say(at, 'The ')
    at.toggle(key='probs').set_value(True).run()
    tokens = history(at)[1]['replies'][0]['tokens']
    shown = html_text(at)
    assert shown.count('class="lp-tok"') == sum(1 for t in tokens if t[0]) and 'lp-tip' in shown and 'lp-legend' in shown
    at.toggle(key='compare').set_value(True).run()
    assert at.multiselect(key='strategies').value == ['Greedy', 'Sidebar settings', 'Creative']
    say(at, 'A list is')
    m = history(at)[-1]
    assert [r['label'] for r in m['replies']] == ['Greedy', 'Sidebar settings', 'Creative'] and all(r['done'] for r in m['replies'])
    model, info, tok = app.load_model(ws)
    context = app.context_of(history(at)[:-1])
    assert m['replies'][0]['text'] == generation.generate(model, tok, context, greedy=True, max_new_tokens=12, repetition_penalty=1.1)
    assert all(f'>{label}<' in html_text(at).replace('</div>', '<') for label in ['Greedy', 'Creative'])


def test_a_stopped_reply_keeps_what_it_had(ws, monkeypatch):
    at = start(ws.root, monkeypatch)
    cut = dict(app.new_reply('Sidebar settings', app.stream_kwargs()), text='half a', tokens=[['half a', 0.5, '▁half', [['▁half', 0.5]]]])
    at.session_state['history'] = [{'role': 'user', 'text': 'The '}, {'role': 'assistant', 'replies': [cut]}]
    at.run()  # the run that a click on Stop starts
    assert not at.exception and history(at)[1]['replies'][0]['stopped'] and 'lp-stopped' in html_text(at)


def test_the_model_is_reloaded_when_its_file_changes(ws):
    m1, _, _ = app.load_model(ws)
    assert app.load_model(ws)[0] is m1
    data = ws.model.read_bytes()
    ws.model.unlink(); ws.model.write_bytes(data)  # a new file, as training writes it
    os.utime(ws.model, ns=(ws.model.stat().st_atime_ns, ws.model.stat().st_mtime_ns + 10**9))
    m2, _, _ = app.load_model(ws)
    assert m2 is not m1 and app.load_model(ws)[0] is m2


def test_without_a_model_the_app_shows_the_fix(ws, tmp_path, monkeypatch):
    empty = tmp_path/'empty'
    empty.mkdir()
    at = start(empty, monkeypatch)
    assert 'state 0' in html_text(at) and any(c.value == f'llmplay run --root {empty}' for c in at.code)
    assert at.button(key='build') and not at.chat_input
    # at state 2, the Build button trains the missing model and the chat appears
    w2 = Workspace.at(tmp_path/'half')
    for a in STAGE_2:
        getattr(w2, a).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(getattr(ws, a), getattr(w2, a))
    at = start(w2.root, monkeypatch)
    assert 'state 2' in html_text(at) and any('llmplay train' in c.value for c in at.code)
    at.selectbox(key='build_preset').set_value('tiny').run()
    click(at, 'build')
    assert pipeline.status(w2)['state'] == 3 and at.chat_input(key='prompt') is not None


def test_the_workspace_comes_from_the_command_line():
    assert app.app_workspace(['--root', '/tmp/x']).root == Path('/tmp/x')
    cmd = pipeline.chat_command(Workspace.at('/tmp/x'))
    assert cmd[cmd.index('--') + 1:] == ['--root', '/tmp/x'] and Path(cmd[4]) == Path(app.__file__)

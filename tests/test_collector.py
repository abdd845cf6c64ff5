"""The collector against a local fake MediaWiki API (tests/fake_mediawiki.py): no test touches the internet."""
import json
import socket
import time
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the fake server beside us; the package, even when not installed
from fake_mediawiki import FakeMediaWiki  # noqa: E402

from llmplay.data import DOC_SEP, DataCollector, check_corpus, clean_wikitext, normalise, read_documents  # noqa: E402
from llmplay.mediawiki import CollectError, MediaWikiAPI, WikipediaUnreachable  # noqa: E402
from llmplay.sources import SOURCES, Document, Source, sample_corpus  # noqa: E402
from llmplay.workspace import Workspace, read_json  # noqa: E402


def article(title, n=3):
    "Wikitext of a plausible article, long enough to keep."
    body = ' '.join(f'{title} is discussed in sentence {i} of this article, with a [[link|linked word]].' for i in range(n))
    return (f"{{{{Infobox thing|name={title}}}}}\n'''{title}''' is a subject.<ref>{{{{cite web|url=x}}}}</ref> {body}\n\n"
            f"== History ==\n{body}\n\n== References ==\n{{{{Reflist}}}}\n[[Category:Things]]\n")


TITLES = [f'Topic {c}' for c in 'ABCDEFGH']
PAGES = {t: article(t) for t in TITLES}
PAGES['Stub'] = "'''Stub''' is short."
PAGES['Mercury'] = "'''Mercury''' may refer to:\n* [[Mercury (planet)]]\n* [[Mercury (element)]]\n" * 5


@pytest.fixture
def fake():
    with FakeMediaWiki(PAGES, redirects={'Old name': 'Topic A'}, disambiguation={'Mercury'},
                       categories={'Category:Topics': TITLES[:5]}) as server:
        yield server


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path/'ws')


def collector(ws, fake, **kwargs):
    "A collector whose Wikipedia client asks `fake`, recording its waits in `.settings['api'].waits`."
    api = MediaWikiAPI(fake.url)
    api.waits = []
    api.sleep = api.waits.append  # record the backoff instead of sleeping
    return DataCollector(ws, min_chars=200, api=api, **kwargs)


def content_requests(fake):
    return [r['params']['titles'].split('|') for r in fake.requests if 'titles' in r['params'] and not r['fault']]


# --- selections, through continuation ---

def test_titles_missing_redirect_disambiguation_short(ws, fake):
    asked = ['topic_B', 'Topic C', 'Old name', 'No such page', 'Mercury', 'Stub', 'Topic D']
    summary = collector(ws, fake).collect(titles=asked, progress=False)
    assert summary['added'] == 5 and summary['articles'] == 5  # the stub too: asked for by name
    assert summary['skipped'] == {'missing': 1, 'disambiguation': 1}
    meta = read_json(ws.corpus_meta)
    records = {a['title']: a for a in meta['articles']}
    assert set(records) == {'Topic A', 'Topic B', 'Topic C', 'Topic D', 'Stub'}
    assert records['Topic A']['redirected_from'] == 'Old name'
    assert records['Topic B']['url'] == fake.url.replace('/w/api.php', '/wiki/Topic_B')
    assert records['Topic B']['pageid'] == fake.pageids['Topic B']
    assert meta['license'] == 'CC BY-SA 4.0, Wikipedia contributors' and meta['source'] == 'wikipedia'
    assert any('rvcontinue' in r['params'] for r in fake.requests)  # content came in several answers
    docs = read_documents(ws)
    assert docs[0].startswith('Topic B\n\nTopic B is a subject.') and '\nHistory\n' in docs[0]
    assert not any('{{' in d or '<ref' in d or 'References' in d or 'Category' in d for d in docs)


def test_category_through_continuation(ws, fake):
    summary = collector(ws, fake).collect(category='Topics', progress=False)
    assert summary['added'] == 5
    lists = [r['params'] for r in fake.requests if r['params'].get('list') == 'categorymembers']
    assert len(lists) == 3 and lists[0]['cmtitle'] == 'Category:Topics' and lists[0]['cmnamespace'] == '0'
    assert [p.get('cmcontinue') for p in lists] == [None, 'page|2', 'page|4']


def test_search_through_continuation(ws, fake):
    summary = collector(ws, fake).collect(search='sentence 2', progress=False)
    assert summary['added'] == len(TITLES)
    offsets = [r['params'].get('sroffset') for r in fake.requests if r['params'].get('list') == 'search']
    assert offsets == [None, '2', '4', '6']


def test_random_and_max_articles(ws, fake):
    assert collector(ws, fake).collect(random=3, progress=False)['added'] == 3
    assert all(r['params']['rnnamespace'] == '0' for r in fake.requests if r['params'].get('list') == 'random')
    summary = collector(ws, fake).collect(category='Topics', max_articles=2, progress=False)
    assert summary['added'] == 2 and summary['articles'] == 5


def test_batches_of_at_most_50_titles(ws, tmp_path):
    many = {f'Page {i:03d}': article(f'Page {i:03d}', 2) for i in range(60)}
    with FakeMediaWiki(many, content_size=100) as fake:
        summary = collector(ws, fake).collect(titles=sorted(many), progress=False)
    assert summary['added'] == 60
    assert [len(t) for t in content_requests(fake)] == [50, 10]


# --- politeness ---

def test_user_agent_maxlag_one_request_at_a_time(ws, fake):
    collector(ws, fake).collect(category='Topics', progress=False)
    assert fake.requests and fake.max_in_flight == 1
    for r in fake.requests:
        assert r['user_agent'].startswith('llmplay/') and 'https://github.com/llmplay/llmplay' in r['user_agent']
        assert (r['params']['maxlag'], r['params']['format'], r['params']['formatversion']) == ('5', 'json', '2')


# --- faults ---

@pytest.mark.parametrize('fault, waits', [('maxlag', [5.0]), ('429', [3.0]), ('503', [2.0]), ('badjson', [1.0]), ('500', [])])
def test_fault_is_retried(ws, fake, fault, waits):
    fake.faults = [None, fault]  # the siteinfo request goes through, the content request fails once
    c = collector(ws, fake)
    summary = c.collect(titles=['Topic A', 'Topic B'], progress=False)
    assert summary['added'] == 2
    served = [(r['fault'], r['params'].get('titles')) for r in fake.requests]
    assert served[1:3] == [(fault, 'Topic A|Topic B'), (None, 'Topic A|Topic B')]  # the same request again
    assert c.settings['api'].waits == waits  # Retry-After honoured (500s are retried by urllib3 at once)


def test_malformed_json_gives_up_with_a_clear_error(ws, fake):
    fake.faults = [None] + ['badjson'] * 10
    c = collector(ws, fake)
    with pytest.raises(CollectError, match='still failing after 6 tries .*malformed JSON'):
        c.collect(titles=['Topic A'], progress=False)
    assert sum(r['fault'] == 'badjson' for r in fake.requests) == 6 and c.settings['api'].waits == [1, 2, 4, 8, 16]
    assert not ws.corpus.exists()


def test_api_error_and_http_error_are_clear(ws, fake, tmp_path):
    with pytest.raises(CollectError, match='HTTP 404'):
        DataCollector(ws, api_url=fake.url.replace('/w/api.php', '/nowhere.php')).collect(titles=['Topic A'], progress=False)
    with pytest.raises(CollectError, match='nothing collected'):
        collector(ws, fake).collect(titles=['No such page'], progress=False)


# --- resuming ---

def test_resumable(ws, fake):
    collector(ws, fake).collect(titles=['Old name', 'Topic B'], progress=False)
    first = ws.corpus.read_text()
    summary = collector(ws, fake).collect(titles=['Topic B', 'Old name', 'Topic A', 'Topic C'], progress=False)
    assert summary['added'] == 1 and summary['articles'] == 3
    assert content_requests(fake)[-1] == ['Topic C']  # known titles (and redirects to them) are not fetched again
    assert ws.corpus.read_text().startswith(first.rstrip('\n') + DOC_SEP)
    titles = [a['title'] for a in read_json(ws.corpus_meta)['articles']]
    assert titles == ['Topic A', 'Topic B', 'Topic C'] and check_corpus(ws, min_chars=100).ok


def test_interrupted_run_keeps_what_it_collected(ws):
    many = {f'Page {i:03d}': article(f'Page {i:03d}', 2) for i in range(60)}
    with FakeMediaWiki(many, content_size=100) as fake:
        fake.faults = [None, None] + ['badjson'] * 6  # the second batch of 50 never arrives
        with pytest.raises(CollectError):
            collector(ws, fake).collect(titles=sorted(many), progress=False)
        assert len(read_documents(ws)) == 50 and check_corpus(ws, min_chars=100).ok
        summary = collector(ws, fake).collect(titles=sorted(many), progress=False)
    assert summary['added'] == 10 and summary['articles'] == 60
    assert len(set(read_documents(ws))) == 60


def test_meta_and_corpus_disagree(ws, fake, capsys):
    collector(ws, fake).collect(titles=['Topic A', 'Topic B'], progress=False)
    ws.corpus.unlink()  # the corpus was deleted, its sidecar left behind
    summary = collector(ws, fake).collect(titles=['Topic A', 'Topic C'], progress=False)
    assert summary['added'] == 2 and summary['articles'] == 2 and 'did not match' in capsys.readouterr().out
    assert [a['title'] for a in read_json(ws.corpus_meta)['articles']] == ['Topic A', 'Topic C']
    ws.corpus_meta.unlink()  # now the sidecar is gone: the documents are kept, with plain records
    summary = collector(ws, fake).collect(titles=['Topic D'], progress=False)
    assert summary['articles'] == 3 and check_corpus(ws, min_chars=100).ok
    assert [a['source'] for a in read_json(ws.corpus_meta)['articles']] == ['unknown', 'unknown', 'wikipedia']


# --- offline ---

def closed_port_url():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return f'http://127.0.0.1:{port}/w/api.php'


def test_offline_falls_back_to_recorded_wikipedia(ws, capsys):
    summary = DataCollector(ws, api_url=closed_port_url()).collect(max_articles=5, progress=False)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith('Wikipedia is unreachable (127.0.0.1:')
    assert 'Connection refused' in out[0] and '--source wikipedia2016' in out[0]
    assert summary['fallback'] and summary['source'] == 'wikipedia2016' and summary['bytes'] > 1_000_000
    meta = read_json(ws.corpus_meta)
    assert meta['source'] == 'wikipedia2016' and 'spring 2016' in meta['description']
    assert meta['license'].startswith('CC BY-SA 3.0') and len(meta['articles']) > 90  # every recorded article
    assert all(a['url'].startswith('https://en.wikipedia.org/wiki/') for a in meta['articles'])


def test_offline_without_fallback_raises(ws):
    with pytest.raises(WikipediaUnreachable, match=r'unreachable .*llmplay collect --source wikipedia2016'):
        DataCollector(ws, api_url=closed_port_url()).collect(fallback=False, progress=False)
    assert not ws.corpus.exists()


# --- other sources ---

def test_files_source(ws, tmp_path):
    (tmp_path/'texts/sub').mkdir(parents=True)
    (tmp_path/'texts/one.txt').write_text('One.  \r\n\r\n\r\n\r\nStill one.\n' * 10)
    (tmp_path/'texts/sub/two.txt').write_text('Two, in a subfolder. ' * 20)
    (tmp_path/'texts/skip.md').write_text('Not a text file. ' * 20)
    (tmp_path/'single.txt').write_text('A single file given by name. ' * 20)
    c = DataCollector(ws, min_chars=100)
    summary = c.collect(source='files', files=[tmp_path/'texts', tmp_path/'single.txt'], progress=False)
    assert summary['added'] == 3 and summary['source'] == 'files'
    docs = read_documents(ws)
    assert docs[0].startswith('One.\n\nStill one.') and '\n\n\n' not in docs[0] and docs[1].startswith('Two,')
    assert c.collect(source='files', files=[tmp_path/'texts'], progress=False)['added'] == 0
    with pytest.raises(CollectError, match='does not exist'):
        c.collect(source='files', files=[tmp_path/'nope'], progress=False)


def test_sample_source(ws):
    docs = sample_corpus()
    assert sum(len(t.encode()) for _, t in docs) > 1_000_000
    titles = [t for t, _ in docs]
    assert 'Python reference: for' in titles and 'Python module: json' in titles
    assert not any('idlelib' in t or 'module: test' in t or 'site-packages' in t for t in titles)
    summary = DataCollector(ws).collect(source='sample', max_articles=10, progress=False)
    assert summary['added'] == 10 and check_corpus(ws).ok
    assert read_documents(ws) == [f'{t}\n\n{normalise(x)}' for t, x in docs if len(normalise(x)) >= 500][:10]  # deterministic
    assert read_json(ws.corpus_meta)['license'].startswith('Python Software Foundation')


# --- cleaning ---

def test_cleaning():
    text = clean_wikitext(
        "{{Infobox|x=1}}\n'''Ada''' was a [[mathematician|mathematician]]<ref>cite</ref> ({{IPA|x}}; 1815–1852).\n"
        "[[File:Ada.jpg|thumb|A [[portrait]]]]\n== Life ==\n=== Early life ===\nBorn in [[London]].\n"
        "{| class=\"wikitable\"\n| a || b\n|}\n== Gallery ==\n<gallery>x.jpg</gallery>\n"
        "== See also ==\n* [[Babbage]]\n=== More ===\nMore links.\n== Legacy ==\nRemembered.\n"
        "== External links ==\n* [https://example.org Site]\n[[Category:Mathematicians]]\n[[fr:Ada]]")
    assert text == 'Ada was a mathematician (1815–1852).\n\nLife\n\nEarly life\nBorn in London.\n\nLegacy\nRemembered.'


def test_normalise():
    assert normalise('a \t\n\n\n\nb\r\n\x00c  ') == 'a\n\nb\nc'
    assert normalise('\n\n    first line\n') == 'first line'
    assert normalise('  keep\n    indentation') == 'keep\n    indentation'


def test_check_corpus(ws, fake):
    assert 'missing' in check_corpus(ws).problem
    collector(ws, fake).collect(titles=TITLES, progress=False)
    assert check_corpus(ws, min_chars=100).ok
    assert 'characters' in check_corpus(ws, min_chars=10**9).problem
    ws.corpus.write_text(ws.corpus.read_text() + 'edited\n')
    bad = check_corpus(ws, min_chars=100)
    assert not bad.ok and 'does not match' in bad.problem and bad.fix == ws.command('collect')
    ws.corpus.write_bytes(b'\xff' * 20000)
    assert 'UTF-8' in check_corpus(ws).problem


def test_connection_lost_midway_keeps_what_it_collected(ws):
    import requests

    class FlakySession(requests.Session):
        "Connects twice (siteinfo and the first batch), then the network goes away."
        calls = 0

        def get(self, *args, **kwargs):
            self.calls += 1
            if self.calls > 2: raise requests.ConnectionError('[Errno 104] Connection reset by peer')
            return super().get(*args, **kwargs)

    many = {f'Page {i:03d}': article(f'Page {i:03d}', 2) for i in range(60)}
    with FakeMediaWiki(many, content_size=100) as fake:
        c = DataCollector(ws, api_url=fake.url, min_chars=200, session=FlakySession())
        with pytest.raises(CollectError, match=r'lost the connection .*Connection reset by peer.*50 articles .* saved'):
            c.collect(titles=sorted(many), progress=False)
    assert len(read_documents(ws)) == 50 and check_corpus(ws, min_chars=100).ok


# --- answers of shapes the API never sends: a clear CollectError, never a TypeError ---

def on_content(change):
    "A `mangle` for the fake that changes the answers carrying page content with `change(answer)`."
    return lambda params, answer: change(answer) if 'titles' in params else answer


def on_list(change):
    return lambda params, answer: change(answer) if 'list' in params else answer


def set_in(path, value):
    "A change that sets the value at `path` (keys and list positions) of an answer."
    def change(answer):
        obj = answer
        for key in path[:-1]: obj = obj[key]
        if value is DELETE: del obj[path[-1]]
        else: obj[path[-1]] = value
        return answer
    return change


DELETE = object()
PAGE0 = ('query', 'pages', 0)
ODD = {  # name: (mangle, collect's arguments)
    'answer is a list': (on_content(lambda a: [a]), {}),
    'answer is text': (on_content(lambda a: 'pages'), {}),
    'answer is null': (on_content(lambda a: None), {}),
    'answer is a huge number': (on_content(lambda a: 10**300), {}),
    'answer is infinity': (on_content(lambda a: b'1e400'), {}),
    'answer is a 5000-digit number': (on_content(lambda a: b'9' * 5000), {}),
    'answer nested 100000 deep': (on_content(lambda a: b'[' * 100000 + b']' * 100000), {}),
    'query is a list': (on_content(set_in(('query',), [])), {}),
    'query is text': (on_content(set_in(('query',), 'x')), {}),
    'pages keyed by id (formatversion 1)': (on_content(lambda a: {'query': {'pages': {'1': a['query']['pages'][0]}}}), {}),
    'pages is null': (on_content(set_in(('query', 'pages'), None)), {}),
    'a page is text': (on_content(set_in(PAGE0, 'Topic A')), {}),
    'a page is a list': (on_content(set_in(PAGE0, [1, 2])), {}),
    'a page is null': (on_content(set_in(PAGE0, None)), {}),
    'a page has no title': (on_content(set_in(PAGE0 + ('title',), DELETE)), {}),
    'a title is a number': (on_content(set_in(PAGE0 + ('title',), 12345678901234567890)), {}),
    'revisions is text': (on_content(set_in(PAGE0 + ('revisions',), 'abc')), {}),
    'revisions is an object': (on_content(set_in(PAGE0 + ('revisions',), {'0': {}})), {}),
    'a revision is null': (on_content(set_in(PAGE0 + ('revisions', 0), None)), {}),
    'slots is a list': (on_content(set_in(PAGE0 + ('revisions', 0, 'slots'), [])), {}),
    'content is a number': (on_content(set_in(PAGE0 + ('revisions', 0, 'slots', 'main', 'content'), 1e308)), {}),
    'content is a list': (on_content(set_in(PAGE0 + ('revisions', 0, 'slots', 'main', 'content'), ['text'])), {}),
    'pageprops is text': (on_content(set_in(PAGE0 + ('pageprops',), 'disambiguation')), {}),
    'redirects is an object': (on_content(set_in(('query', 'redirects'), {'from': 'a', 'to': 'b'})), {}),
    'a redirect lacks its target': (on_content(set_in(('query', 'redirects'), [{'from': 'a'}])), {}),
    'continue is text': (on_content(set_in(('continue',), 'more')), {}),
    'a continue value is a list': (on_content(set_in(('continue',), {'rvcontinue': [1, 2]})), {}),
    'continue never changes': (on_content(set_in(('continue',), {'rvcontinue': '7', 'continue': '||'})), {}),
    'error is text': (on_content(lambda a: {'error': 'down for maintenance'}), {}),
    'error is a list': (on_content(lambda a: {'error': ['x'] * 100}), {}),
    'siteinfo is a list': (lambda p, a: [] if p.get('meta') == 'siteinfo' else a, {}),
    'siteinfo general is text': (lambda p, a: {'query': {'general': 'x'}} if p.get('meta') == 'siteinfo' else a, {}),
    'search results are text': (on_list(set_in(('query', 'search'), 'Topic A')), {'titles': None, 'search': 'sentence'}),
    'a search result is a number': (on_list(set_in(('query', 'search', 0), 7)), {'titles': None, 'search': 'sentence'}),
    'a search title is null': (on_list(set_in(('query', 'search', 0, 'title'), None)), {'titles': None, 'search': 'sentence'}),
    'category members is an object': (on_list(set_in(('query', 'categorymembers'), {'a': 1})),
                                      {'titles': None, 'category': 'Topics'}),
}


@pytest.mark.parametrize('name', list(ODD))
def test_odd_shapes_are_clear_errors(ws, fake, name):
    collector(ws, fake).collect(titles=['Topic E'], progress=False)  # a corpus that must come through unharmed
    before = ws.corpus.read_bytes(), ws.corpus_meta.read_bytes()
    mangle, kwargs = ODD[name]
    fake.mangle = mangle
    with pytest.raises(CollectError) as e:
        collector(ws, fake).collect(**{'titles': ['Topic A', 'Topic B'], **kwargs}, progress=False)
    message = str(e.value)
    assert '\n' not in message and len(message) < 400 and fake.url in message, message
    assert (ws.corpus.read_bytes(), ws.corpus_meta.read_bytes()) == before


def test_odd_but_harmless_shapes_are_tolerated(ws, fake):
    "Odd values the collector does not need (page ids, site details) do not stop it; a page without text is skipped."
    def mangle(params, answer):
        if params.get('meta') == 'siteinfo': answer['query']['general'].update(server=7, articlepath=['x'], sitename=None)
        if 'titles' in params:
            for page in answer['query']['pages']:
                page['pageid'] = 10**40 if page['title'] == 'Topic A' else float('inf') if page['title'] == 'Topic B' else True
                if page['title'] == 'Topic C' and 'revisions' in page: del page['revisions'][0]['slots']['main']['content']
        return answer
    fake.mangle = mangle
    summary = collector(ws, fake).collect(titles=['Topic A', 'Topic B', 'Topic C'], progress=False)
    assert summary['added'] == 2 and summary['skipped'] == {'missing': 1}
    records = read_json(ws.corpus_meta)['articles']
    assert all('pageid' not in r for r in records) and records[0]['url'].endswith('/wiki/Topic_A')
    json.loads(ws.corpus_meta.read_text(), parse_constant=lambda c: pytest.fail(f'{c} in the sidecar'))  # strict JSON


def test_wait_forever_gives_up_at_once(ws, fake):
    fake.faults = [None, 'wait-forever']
    c = collector(ws, fake)
    with pytest.raises(CollectError, match=r'asks to wait .* seconds before the next request .*try again later'):
        c.collect(titles=['Topic A'], progress=False)
    assert c.settings['api'].waits == []


# --- named titles, min_chars, contact ---

def test_named_titles_kept_whatever_their_length(ws, fake):
    summary = collector(ws, fake).collect(titles=['Stub'], progress=False)
    assert summary['added'] == 1 and read_documents(ws) == ['Stub\n\nStub is short.']
    with pytest.raises(CollectError, match=r"nothing collected from wikipedia \(skipped: 1 short\).*--min-chars"):
        collector(Workspace(ws.root.parent/'crawl'), fake).collect(search='is short', progress=False)
    summary = collector(Workspace(ws.root.parent/'crawl'), fake).collect(search='is short', min_chars=5, progress=False)
    assert summary['added'] == 1


def test_contact_in_user_agent(ws, fake, monkeypatch):
    monkeypatch.delenv('LLMPLAY_CONTACT', raising=False)
    collector(ws, fake).collect(titles=['Topic A'], progress=False)
    agent = fake.requests[-1]['user_agent']
    assert agent.startswith('llmplay/') and 'set LLMPLAY_CONTACT or --contact' in agent and '@' not in agent
    monkeypatch.setenv('LLMPLAY_CONTACT', 'ada@example.org')
    collector(ws, fake).collect(titles=['Topic B'], progress=False)
    assert '; ada@example.org)' in fake.requests[-1]['user_agent']
    collector(ws, fake).collect(titles=['Topic C'], contact='https://example.org/~grace', progress=False)
    assert all('https://example.org/~grace' in r['user_agent'] for r in fake.requests[-2:])
    for bad in ['grace', 'a@b.org\nX-Injected: 1', 'gräce@example.org']:
        with pytest.raises(CollectError, match='Wikimedia asks for a way to reach you'):
            collector(ws, fake).collect(titles=['Topic D'], contact=bad, progress=False)
    monkeypatch.setenv('LLMPLAY_CONTACT', 'nobody')
    with pytest.raises(CollectError, match=r'\$LLMPLAY_CONTACT .nobody. is not an e-mail'):
        collector(ws, fake)


# --- files that are not UTF-8 text; bad arguments ---

def test_files_not_utf8_or_binary_are_refused(ws, tmp_path):
    good = tmp_path/'good.txt'
    good.write_text('A good file of text. ' * 40)
    DataCollector(ws).collect(source='files', files=[good], progress=False)
    before = ws.corpus.read_bytes(), ws.corpus_meta.read_bytes()
    (tmp_path/'latin1.txt').write_bytes(('Café crème, naïve façade. ' * 40).encode('latin-1'))
    (tmp_path/'utf16.txt').write_text('Café in UTF-16. ' * 40, encoding='utf-16')
    (tmp_path/'image.txt').write_bytes(b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR' + bytes(range(256)) * 8)
    (tmp_path/'controls.txt').write_bytes(bytes(range(1, 32)) * 40)
    for name, match in [('latin1.txt', r'latin1.txt is not UTF-8 text \(byte 3 is 0xe9\).*--encoding latin-1'),
                        ('utf16.txt', r'utf16.txt is UTF-16 text.*--encoding utf-16'),
                        ('image.txt', r'image.txt is not a text file \(a NUL byte'),
                        ('controls.txt', r'controls.txt is not a text file \(.* control characters')]:
        with pytest.raises(CollectError, match=match):  # the bad file comes last: nothing of the first is added either
            DataCollector(ws).collect(source='files', files=[tmp_path/'good2.txt', tmp_path/name]
                                      if (tmp_path/'good2.txt').write_text('Another good file. ' * 40) else [], progress=False)
        assert (ws.corpus.read_bytes(), ws.corpus_meta.read_bytes()) == before
    summary = DataCollector(ws).collect(source='files', files=[tmp_path/'latin1.txt'], encoding='latin-1', progress=False)
    assert summary['added'] == 1 and read_documents(ws)[-1].startswith('Café crème, naïve façade.')
    assert '\ufffd' not in ws.corpus.read_text()
    with pytest.raises(CollectError, match='unknown text encoding'):
        DataCollector(ws).collect(source='files', files=[tmp_path/'latin1.txt'], encoding='base64', progress=False)


def test_named_files_kept_folder_files_filtered(ws, tmp_path):
    (tmp_path/'folder').mkdir()
    (tmp_path/'folder/long.txt').write_text('Long enough to keep from a folder. ' * 30)
    (tmp_path/'folder/short.txt').write_text('Short, found in a folder.')
    (tmp_path/'named.txt').write_text('Short, but named.')
    (tmp_path/'empty.txt').write_text(' \n\n ')
    summary = DataCollector(ws).collect(source='files', files=[tmp_path/'folder', tmp_path/'named.txt', tmp_path/'empty.txt'],
                                        progress=False)
    assert summary['added'] == 2 and summary['skipped'] == {'short': 1, 'empty': 1}
    assert read_documents(ws)[1] == 'Short, but named.'


def test_corpus_not_utf8_is_refused_not_garbled(ws, tmp_path):
    (tmp_path/'a.txt').write_text('Some text. ' * 50)
    ws.corpus.parent.mkdir(parents=True)
    ws.corpus.write_bytes(b'Old text \xff\xfe of the corpus.\n')
    with pytest.raises(CollectError, match=r'is not valid UTF-8 \(byte 9\).*llmplay run --until 1'):
        DataCollector(ws).collect(source='files', files=[tmp_path/'a.txt'], progress=False)
    assert ws.corpus.read_bytes() == b'Old text \xff\xfe of the corpus.\n'


@pytest.mark.parametrize('kwargs, match', [
    ({'source': 'web'}, r"unknown source 'web'.*llmplay collect --source wikipedia2016"),
    ({'source': 'files'}, r'the files source needs files or folders: `llmplay collect --source files --files PATH'),
    ({'source': 'files', 'files': ['nowhere.txt']}, r'nowhere.txt does not exist: give --files text files'),
    ({'source': 'files', 'files': ['.'], 'titles': ['A']}, r'--titles is for the wikipedia source, not files.*--source files'),
    ({'source': 'sample', 'category': 'Physics', 'random': 3}, r'--category and --random are for the wikipedia source.*--source sample'),
    ({'source': 'sample', 'files': ['a.txt'], 'encoding': 'latin-1'}, r'--files and --encoding are for the files source'),
    ({'source': 'sample', 'min_chars': 10**9}, r'nothing collected from sample \(skipped: .* short\); lower --min-chars'),
    ({'titles': ['A|B']}, r"'A\|B' cannot be a Wikipedia title"),
    ({'titles': ['  ']}, r"'  ' cannot be a Wikipedia title"),
    ({'search': ''}, r'--search needs some text'),
    ({'random': 0}, r'--random must be a whole number of at least 1, got 0'),
    ({'max_articles': 0}, r'--max-articles must be a whole number of at least 1, got 0'),
    ({'max_articles': 2.5}, r'--max-articles must be a whole number'),
    ({'min_chars': -1}, r'--min-chars must be a whole number of at least 0'),
    ({'titles': ['Nope']}, r"nothing collected from wikipedia \(skipped: 1 missing\); check the titles' spelling.*--search Nope"),
])
def test_bad_arguments_say_what_fits(ws, fake, tmp_path, monkeypatch, kwargs, match):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CollectError, match=match):
        collector(ws, fake).collect(**kwargs, progress=False)
    assert not ws.corpus.exists()


@pytest.mark.parametrize('kwargs, match', [
    ({'lang': 'evil.example/#'}, r'--lang must be a Wikipedia language code'),
    ({'api_url': 'ftp://example.org/api.php'}, r'--api-url must be the http\(s\):// address'),
    ({'api_url': 'en.wikipedia.org'}, r'--api-url must be the http\(s\):// address'),
    ({'min_chars': 'many'}, r'--min-chars must be a whole number'),
])
def test_bad_collector_settings(ws, kwargs, match):
    with pytest.raises(CollectError, match=match):  # refused before any request
        DataCollector(ws, **kwargs).collect(progress=False)
    assert not ws.corpus.exists()


def test_tiny_corpus_is_noted(ws, fake, capsys):
    collector(ws, fake).collect(titles=['Topic A'], progress=False)
    out = capsys.readouterr().out
    assert 'note: the corpus has' in out and 'the tokenizer needs at least 10,000' in out


def test_events_progress_and_messages(ws, fake, capsys):
    seen = []
    summary = collector(ws, fake).collect(titles=['Topic A', 'Topic B', 'No such page'], on_event=seen.append)
    progress = [e for e in seen if e.kind == 'progress']
    assert [(e.stage, e.done, e.total, e.unit) for e in progress] == [('collect', 1, 3, 'articles'), ('collect', 2, 3, 'articles')]
    assert [e.text for e in seen if e.kind == 'message'][0].startswith('note: the corpus has')
    assert seen[-1].kind == 'end' and seen[-1].data == summary and capsys.readouterr().out == ''  # no prints


def test_a_new_source_is_one_registration(ws, monkeypatch):
    "A source registered in the registry is collected from, and offered by the command line, with no other change."
    from llmplay.cli import parser
    poems = lambda request: (Document(t, f'{t}, a poem of some length. ' * 30) for t in request.options.get('only', ['A', 'B']))
    monkeypatch.setitem(SOURCES, 'poems', Source('poems', 'two poems', 'public domain', poems, options=('only',), titled=True))
    summary = DataCollector(ws).collect(source='poems', only=['Ozymandias'], progress=False)
    assert summary['added'] == 1 and read_documents(ws)[0].startswith('Ozymandias\n\nOzymandias, a poem')
    meta = read_json(ws.corpus_meta)
    assert meta['source'] == 'poems' and meta['license'] == 'public domain' and meta['description'] == 'two poems'
    with pytest.raises(CollectError, match=r'--only is for the poems source, not files'):
        DataCollector(ws).collect(source='files', files=['x.txt'], only=['A'], progress=False)
    assert parser().parse_args(['collect', '--source', 'poems']).source == 'poems'


def test_check_returns_the_corpus_it_read(ws, fake):
    collector(ws, fake).collect(titles=['Topic A', 'Topic B'], progress=False)
    c = check_corpus(ws, min_chars=100)
    assert c.ok and c.value.documents == read_documents(ws) and c.value.sha256 == read_json(ws.corpus_meta)['sha256']
    summary = collector(ws, fake).collect(titles=['Topic C'], corpus=c.value, progress=False)  # adds to it, no reread
    assert summary['articles'] == 3 and check_corpus(ws, min_chars=100).ok
    ws.corpus.write_text(ws.corpus.read_text() + 'edited\n')
    bad = check_corpus(ws, min_chars=100)
    assert not bad.ok and bad.value.changed and bad.value.documents[-1].endswith('edited')  # the text, records rebuilt


def test_signals_held_until_the_writes_are_done():
    import os, signal
    from llmplay.events import signals_held
    done = []
    with pytest.raises(KeyboardInterrupt):
        with signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            done.append(1)  # still runs: the interrupt waits for the block's end
    assert done == [1]


# --- the recorded Wikipedia (llmplay/data/enwiki_2016.json.xz) through the collector ---

ARCHIVE = HERE.parent/'llmplay/data/enwiki_2016.json.xz'


@pytest.fixture(scope='module')
def archive():
    import lzma
    return json.loads(lzma.decompress(ARCHIVE.read_bytes()))


def test_replay_every_page_comes_through(tmp_path, archive):
    from llmplay.mediawiki import DISAMBIGUATION, replay_session
    session = replay_session(ARCHIVE, max_chars=300_000)  # small answers: content comes through continuation
    c = DataCollector(Workspace(tmp_path/'ws'), session=session, min_chars=0)
    summary = c.collect(titles=[p['title'] for p in archive['pages']], progress=False)
    replay = session.get_adapter('https://')
    articles = {p['title'] for p in archive['pages'] if not p['redirect']}
    meta = read_json(c.ws.corpus_meta)
    kept = {a['title'] for a in meta['articles']}
    dab = {p['title'] for p in archive['pages'] if not p['redirect'] and DISAMBIGUATION.search(p['wikitext'])}
    assert kept == articles - dab and {'Ada', 'Austin (disambiguation)'} <= dab  # every article but disambiguation pages
    assert summary['skipped']['disambiguation'] == len(dab) and set(summary['skipped']) <= {'disambiguation', 'duplicate'}
    assert any('rvcontinue' in q for q in replay.requests)  # answers came in parts
    redirected = {a['redirected_from'] for a in meta['articles'] if a.get('redirected_from')}
    assert redirected and redirected <= {p['title'] for p in archive['pages'] if p['redirect']}
    assert meta['license'] == 'CC BY-SA 3.0, Wikipedia contributors'
    assert all(a['url'].startswith('https://en.wikipedia.org/wiki/') for a in meta['articles'])
    assert check_corpus(c.ws).ok


def test_replay_lists_continue_and_redirects_resolve(tmp_path):
    from llmplay.mediawiki import replay_session
    api = MediaWikiAPI('https://en.wikipedia.org/w/api.php', session=replay_session(ARCHIVE, max_list=7))
    found = list(api.search('river'))
    assert len(found) == len(set(found)) > 14 and sum('sroffset' in q for q in api.session.get_adapter('https://').requests) >= 2
    members = list(api.category('Member states of the United Nations'))
    assert 'Andorra' in members and 'Aruba' not in members
    pages = {p['title']: p for p in api.pages(['ANOVA', 'abacus', 'Nowhere at all'])}
    assert pages['Analysis of variance']['redirected_from'] == 'ANOVA' and pages['Nowhere at all']['missing']
    assert 'revisions' in pages['Abacus']
    assert len(set(api.random(5))) == 5 and len(list(MediaWikiAPI(api.url, session=replay_session(ARCHIVE)).random(500))) == 106


def test_replay_session_is_deterministic(tmp_path):
    from llmplay.mediawiki import replay_session
    runs = [DataCollector(Workspace(tmp_path/str(i)), session=replay_session(ARCHIVE)).collect(random=4, progress=False)
            for i in range(2)]
    assert runs[0]['chars'] == runs[1]['chars'] and read_documents(Workspace(tmp_path/'0')) == read_documents(Workspace(tmp_path/'1'))

"""The collector against a local fake MediaWiki API (tests/fake_mediawiki.py): no test touches the internet."""
import socket
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the fake server beside us; the package, even when not installed
from fake_mediawiki import FakeMediaWiki  # noqa: E402

from llmplay.data import (DOC_SEP, CollectError, DataCollector, WikipediaUnreachable, check_corpus,  # noqa: E402
                          clean_wikitext, normalise, read_documents, sample_corpus)
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
    c = DataCollector(ws, api_url=fake.url, min_chars=200, **kwargs)
    c.api.waits = []
    c.api.sleep = c.api.waits.append  # record the backoff instead of sleeping
    return c


def content_requests(fake):
    return [r['params']['titles'].split('|') for r in fake.requests if 'titles' in r['params'] and not r['fault']]


# --- selections, through continuation ---

def test_titles_missing_redirect_disambiguation_short(ws, fake):
    asked = ['topic_B', 'Topic C', 'Old name', 'No such page', 'Mercury', 'Stub', 'Topic D']
    summary = collector(ws, fake).collect(titles=asked, progress=False)
    assert summary['added'] == 4 and summary['articles'] == 4
    assert summary['skipped'] == {'missing': 1, 'disambiguation': 1, 'short': 1}
    meta = read_json(ws.corpus_meta)
    records = {a['title']: a for a in meta['articles']}
    assert set(records) == {'Topic A', 'Topic B', 'Topic C', 'Topic D'}
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
    assert c.api.waits == waits  # Retry-After honoured (500s are retried by urllib3 at once)


def test_malformed_json_gives_up_with_a_clear_error(ws, fake):
    fake.faults = [None] + ['badjson'] * 10
    c = collector(ws, fake)
    with pytest.raises(CollectError, match='still failing after 6 tries .*malformed JSON'):
        c.collect(titles=['Topic A'], progress=False)
    assert sum(r['fault'] == 'badjson' for r in fake.requests) == 6 and c.api.waits == [1, 2, 4, 8, 16]
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


def test_offline_falls_back_to_sample(ws, capsys):
    summary = DataCollector(ws, api_url=closed_port_url()).collect(max_articles=5, progress=False)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith('Wikipedia is unreachable (127.0.0.1:') and '--source sample' in out[0]
    assert 'Connection refused' in out[0]
    assert summary['fallback'] and summary['source'] == 'sample' and summary['bytes'] > 1_000_000
    meta = read_json(ws.corpus_meta)
    assert meta['source'] == 'sample' and 'pydoc topics and standard-library docstrings' in meta['description']


def test_offline_without_fallback_raises(ws):
    with pytest.raises(WikipediaUnreachable, match=r'unreachable .*llmplay collect --source sample'):
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
    assert read_documents(ws) == [f'{t}\n\n{x}' for t, x in docs if len(x) >= 500][:10]  # deterministic
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

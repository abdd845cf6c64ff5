"""A fake MediaWiki Action API on 127.0.0.1 for the collector's tests.

It answers `action=query` requests in the real API's JSON shape (`formatversion=2`): `meta=siteinfo`, the
`categorymembers`, `search` and `random` lists, and page content (`prop=revisions|pageprops`) with title
normalisation, redirects, missing and disambiguation pages, and `continue` chains (lists come `list_size`
items per answer, page content `content_size` pages per answer). Faults are injected in order, one per
request, from `faults`: 'maxlag', '429', '503', '500', 'badjson', 'wait-forever' (None: no fault for that request).
Answers of odd shapes: `mangle(params, answer)` may return another answer (any JSON value, or raw bytes) for
every request; `delay` seconds are spent on each request (to interrupt a collection midway).
Every request is recorded in `requests` (parameters, User-Agent, the fault served).
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

FAULTS = {
    'maxlag': (200, {'Retry-After': '5', 'X-Database-Lag': '7', 'Content-Type': 'application/json'},
               {'error': {'code': 'maxlag', 'info': 'Waiting for 10.64.48.35: 7 seconds lagged', 'host': '10.64.48.35',
                          'lag': 7, 'type': 'db', '*': 'See https://en.wikipedia.org/w/api.php for API usage.'},
                'servedby': 'mw-api-ext.eqiad.main'}),
    '429': (429, {'Retry-After': '3', 'Content-Type': 'text/html'}, b'<html><body>Too many requests</body></html>'),
    '503': (503, {'Retry-After': '2', 'Content-Type': 'text/html'}, b'<html><body>Service Unavailable</body></html>'),
    '500': (500, {'Content-Type': 'text/html'}, b'<html><body>Internal Server Error</body></html>'),
    'badjson': (200, {'Content-Type': 'application/json'}, b'{"batchcomplete": true, "query": {"pages": [{"pagei'),
    'wait-forever': (429, {'Retry-After': '9' * 40, 'Content-Type': 'text/html'}, b'<html><body>Go away</body></html>'),
}


def normalise_title(title):
    "MediaWiki's title normalisation, as far as the tests need it: underscores to spaces, first letter upper."
    title = title.replace('_', ' ').strip()
    return title[:1].upper() + title[1:]


class FakeMediaWiki:
    "A local fake of one wiki's api.php; use as a context manager, point the collector at `url`."

    def __init__(self, pages, redirects=None, disambiguation=(), categories=None, list_size=2, content_size=2):
        self.pages = dict(pages)                        # title -> wikitext
        self.redirects = dict(redirects or {})          # title -> target title
        self.disambiguation = set(disambiguation)       # titles of disambiguation pages (also in `pages`)
        self.categories = dict(categories or {})        # 'Category:Name' -> member titles
        self.list_size, self.content_size = list_size, content_size
        self.pageids = {t: 1000 + i for i, t in enumerate(sorted(self.pages))}
        self.faults, self.requests = [], []
        self.mangle, self.delay = None, 0.0  # answers of odd shapes; seconds spent on each request
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    # --- server plumbing ---
    def __enter__(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self): fake._handle(self)
            def log_message(self, *args): pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_port}/w/api.php'
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.01}, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler):
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(0.002 + self.delay)  # long enough for a second, parallel request to overlap
            url = urlparse(handler.path)
            params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            with self.lock: fault = self.faults.pop(0) if self.faults else None
            self.requests.append({'params': params, 'user_agent': handler.headers.get('User-Agent'), 'fault': fault})
            if fault: status, headers, body = FAULTS[fault]
            elif url.path != '/w/api.php': status, headers, body = 404, {'Content-Type': 'text/html'}, b'Not Found'
            else:
                status, headers, body = 200, {'Content-Type': 'application/json; charset=utf-8'}, self.answer(params)
                if self.mangle: body = self.mangle(params, body)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        finally:  # done before the answer goes out: a client that waits for it cannot overlap this request
            with self.lock: self.in_flight -= 1
        handler.send_response(status)
        for k, v in {**headers, 'Content-Length': str(len(data))}.items(): handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(data)

    # --- the API ---
    def answer(self, p):
        if p.get('action') != 'query' or p.get('format') != 'json' or p.get('formatversion') != '2':
            return {'error': {'code': 'badvalue', 'info': 'this fake only speaks action=query&format=json&formatversion=2'}}
        if p.get('meta') == 'siteinfo':
            return {'batchcomplete': True, 'query': {'general': {
                'sitename': 'Wikipedia', 'lang': 'en', 'server': f'//127.0.0.1:{self.server.server_port}',
                'articlepath': '/wiki/$1', 'base': f'http://127.0.0.1:{self.server.server_port}/wiki/Main_Page'}}}
        if p.get('list') == 'categorymembers':
            members = self.categories.get(normalise_title(p['cmtitle']), [])
            start = int(p.get('cmcontinue', 'page|0').split('|')[1])
            return self._list('categorymembers', [self._item(t) for t in members], start,
                              lambda n: {'cmcontinue': f'page|{n}'})
        if p.get('list') == 'search':
            words = p['srsearch'].lower()
            hits = [t for t in sorted(self.pages) if words in self.pages[t].lower() and t not in self.redirects]
            answer = self._list('search', [{'ns': 0, 'title': t, 'pageid': self.pageids[t]} for t in hits],
                                int(p.get('sroffset', 0)), lambda n: {'sroffset': n})
            answer['query']['searchinfo'] = {'totalhits': len(hits)}
            return answer
        if p.get('list') == 'random':  # an endless chain; "random" is a fixed rotation through the articles
            titles = sorted(t for t in self.pages if t not in self.redirects)
            start = int(p.get('rncontinue', '0.5|0.6|0|0').split('|')[3])
            items = [{'id': self.pageids[titles[(start + i) % len(titles)]], 'ns': 0,
                      'title': titles[(start + i) % len(titles)]} for i in range(self.list_size)]
            return {'batchcomplete': True, 'continue': {'rncontinue': f'0.5|0.6|0|{start + self.list_size}', 'continue': '-||'},
                    'query': {'random': items}}
        if p.get('prop') == 'revisions|pageprops' and 'titles' in p:
            return self._content(p)
        return {'error': {'code': 'badvalue', 'info': f'unsupported request {p}'}}

    def _item(self, title):
        return {'pageid': self.pageids.get(title, 0), 'ns': 0, 'title': title}

    def _list(self, name, items, start, token):
        answer = {'batchcomplete': True, 'query': {name: items[start:start + self.list_size]}}
        if start + self.list_size < len(items):
            answer['continue'] = {**token(start + self.list_size), 'continue': '-||'}
        return answer

    def _content(self, p):
        asked = p['titles'].split('|')
        if len(asked) > 50:
            return {'error': {'code': 'toomanyvalues', 'info': 'Too many values supplied for parameter "titles". The limit is 50.'}}
        normalized = [{'fromencoded': False, 'from': t, 'to': normalise_title(t)} for t in asked if normalise_title(t) != t]
        titles = list(dict.fromkeys(normalise_title(t) for t in asked))
        redirects = [{'from': t, 'to': self.redirects[t]} for t in titles if t in self.redirects and p.get('redirects')]
        final = list(dict.fromkeys(self.redirects.get(t, t) if p.get('redirects') else t for t in titles))
        with_content = [t for t in final if t in self.pages]
        start = int(p.get('rvcontinue', 0))
        shown = set(with_content[start:start + self.content_size])
        pages = []
        for t in final:
            if t not in self.pages:
                pages.append({'ns': 0, 'title': t, 'missing': True})
                continue
            page = self._item(t)
            if t in self.disambiguation: page['pageprops'] = {'disambiguation': ''}
            if t in shown:
                page['revisions'] = [{'slots': {'main': {'contentmodel': 'wikitext', 'contentformat': 'text/x-wiki',
                                                         'content': self.pages[t]}}}]
            pages.append(page)
        query = {'pages': pages}
        if normalized: query['normalized'] = normalized
        if redirects: query['redirects'] = redirects
        answer = {'query': query}
        if start + self.content_size < len(with_content):
            answer['continue'] = {'rvcontinue': str(start + self.content_size), 'continue': '||'}
        else:
            answer['batchcomplete'] = True
        return answer

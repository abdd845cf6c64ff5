"""The chat in a real browser: `llmplay chat` serves it on 127.0.0.1, Debian's Chromium drives it through Playwright.

Screenshots go to screenshots/ (chat.png, chat_compare.png, chat_stopped.png, chat_not_ready.png). The time from
Enter to the first token on the page is printed; `LLMPLAY_BROWSER_WS=DIR` runs the tests on the workspace DIR
instead of a tiny one, e.g. on a `small` model to measure that time for real.
"""
import json, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from conftest import free_port
from llmplay.generation import SamplingSettings
from llmplay.workspace import Workspace

TOP = Path(__file__).resolve().parent.parent
SHOTS = TOP/'screenshots'
COURSE_IMAGES = os.environ.get('LLMPLAY_COURSE_IMAGES')  # also save the course's pictures there (tools/run_nbs.py --screenshots)
LLMPLAY = Path(sys.executable).parent/'llmplay'  # the console script of this venv
# performance.now() at Enter in the chat input, and when the newest reply first shows a token
FIRST_TOKEN_JS = """() => {
  window.__enter = null; window.__token = null;
  const input = document.querySelector('[data-testid=stChatInputTextArea]');
  input.addEventListener('keydown', e => { if (e.key === 'Enter' && window.__enter === null) window.__enter = performance.now(); }, true);
  const before = document.querySelectorAll('.lp-reply').length;
  const seen = new MutationObserver(() => {
    const replies = document.querySelectorAll('.lp-reply'), last = replies[replies.length - 1];
    if (replies.length > before && last.textContent.length > (last.querySelector('.lp-echo')?.textContent.length || 0)) {
      window.__token = performance.now(); seen.disconnect();
    }
  });
  seen.observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope='module')
def workspace(request):
    if root := os.environ.get('LLMPLAY_BROWSER_WS'): return Workspace(root)
    return request.getfixturevalue('trained')


class Chat:
    "`llmplay chat --root ROOT` on a free port of 127.0.0.1, in a process group of its own (stopped by its id)."
    def __init__(self, root):
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([str(LLMPLAY), 'chat', '--root', str(root), '--port', str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while True:  # the health check answers before the script runs: the tests then wait for a real element
            try:
                with urllib.request.urlopen(self.url + '/_stcore/health', timeout=2) as r:
                    if r.status == 200: break
            except OSError: pass
            assert self.proc.poll() is None, f'llmplay chat exited:\n{self.output()}'
            assert time.time() < deadline, f'llmplay chat did not start within 60 s:\n{self.output()}'
            time.sleep(0.3)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors='replace')

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=20)
        self.log.close()


@pytest.fixture(scope='module')
def server(workspace):
    chat = Chat(workspace.root)
    yield chat.url
    chat.stop()


def picture(page, name: str, **kw):
    "Save a screenshot as screenshots/NAME, and in the course's images folder when asked."
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS/name), **kw)
    if COURSE_IMAGES: shutil.copy(SHOTS/name, Path(COURSE_IMAGES)/name)


def open_chat(browser, url, width=1280, height=900):
    "A new browser session (its own context: cookies, tab, Streamlit session) on the chat, once it is drawn."
    page = browser.new_context(viewport={'width': width, 'height': height}, accept_downloads=True).new_page()
    page.goto(url)
    page.get_by_test_id('stChatInputTextArea').wait_for(timeout=60000)
    return page


def send(page, text, replies=1) -> float:
    "Type `text`, press Enter, wait until the reply is finished; the ms from Enter to its first token."
    done = page.locator('.lp-meta').count() + replies
    page.evaluate(FIRST_TOKEN_JS)
    box = page.get_by_test_id('stChatInputTextArea')
    box.fill(text)
    box.press('Enter')
    page.wait_for_function('window.__token !== null', timeout=60000)
    page.wait_for_function(f"document.querySelectorAll('.lp-meta').length >= {done}", timeout=60000)
    return page.evaluate('window.__token - window.__enter')


def test_chat(server, browser):
    SHOTS.mkdir(exist_ok=True)
    page = open_chat(browser, server, height=1400)
    assert 'base model' in page.locator('.lp-hero').inner_text().lower()
    times = [send(page, p) for p in ['The history of', 'A list is', 'In 1905,']]
    print(f'\nEnter to first token: {", ".join(f"{t:.0f}" for t in times)} ms (median {statistics.median(times):.0f} ms)')
    assert all(t > 0 for t in times)  # a figure to read, not a timed test: the machine may be busy
    messages = page.get_by_test_id('stChatMessage')
    assert messages.count() == 6
    assert page.locator('.lp-reply').nth(0).inner_text().startswith('The history of')  # the prompt's end, then the reply
    page.get_by_text('Token probabilities').click()
    page.wait_for_function("document.querySelectorAll('.lp-reply.lp-probs').length === 3")  # every reply in colour
    assert page.locator('.lp-legend').is_visible()
    words = page.locator('.lp-reply').last.locator('.lp-tok').filter(has_text=re.compile(r'^\s?[A-Za-z]{3}'))
    tok = words.nth(min(2, words.count() - 1))
    tok.scroll_into_view_if_needed()
    page.mouse.wheel(0, 250)  # clear of the chat input, which stays at the bottom of the window
    tok.hover()
    tip = tok.locator('.lp-tip')
    tip.wait_for(state='visible', timeout=5000)
    assert tip.inner_text().startswith('p = ') and tip.locator('.lp-alt').count() >= 5
    picture(page, 'chat.png')
    # another browser session has its own, empty history, and its reply does not reach the first one
    other = open_chat(browser, server)
    assert other.get_by_test_id('stChatMessage').count() == 0
    send(other, 'The')
    assert other.get_by_test_id('stChatMessage').count() == 2 and messages.count() == 6
    other.context.close()
    page.context.close()


def test_stop_compare_save_and_load(server, browser, tmp_path):
    page = open_chat(browser, server, width=1440)
    page.locator('.st-key-max_new_tokens input[type=range]').focus()
    page.keyboard.press('End')  # 1000 tokens: long enough to be stopped
    longest = SamplingSettings.knobs()[[k.name for k in SamplingSettings.knobs()].index('max_new_tokens')].hi
    page.wait_for_function(f"document.querySelector('.st-key-max_new_tokens').innerText.includes('{longest}')")
    box = page.get_by_test_id('stChatInputTextArea')
    for attempt in range(5):  # the tiny model writes ~1,000 tokens/s: a reply may end (eos) before Stop lands
        done = page.locator('.lp-meta').count() + 1
        box.fill('The')
        box.press('Enter')
        page.locator('.lp-cursor').wait_for(timeout=60000)
        if attempt == 0: picture(page, 'chat_streaming.png')  # Stop is in the toolbar while a reply streams
        try: page.get_by_role('button', name='Stop').click(timeout=5000)
        except PlaywrightTimeout: pass  # the reply ended first, and Stop went with it: try again
        page.wait_for_function(f"document.querySelectorAll('.lp-meta').length >= {done}", timeout=30000)
        if page.locator('.lp-meta').last.locator('.lp-stopped').count(): break
    else: raise AssertionError('Stop did not stop any of 5 replies')
    stopped = page.locator('.lp-meta').last
    n = int(stopped.inner_text().split()[0])
    assert 0 < n < longest and page.locator('.lp-cursor').count() == 0
    picture(page, 'chat_stopped.png')
    # compare: one prompt, three strategies side by side
    page.locator('.st-key-max_new_tokens input[type=range]').focus()
    page.keyboard.press('Home')
    for _ in range(60): page.keyboard.press('ArrowRight')  # 61 tokens
    page.get_by_text('Compare strategies').click()
    page.get_by_text('Strategies', exact=True).wait_for()
    send(page, 'A list is', replies=3)
    assert page.locator('.lp-strategy').all_inner_texts()[-3:] == ['GREEDY', 'SIDEBAR SETTINGS', 'CREATIVE']
    assert int(page.locator('.lp-meta:has(.lp-stopped)').last.inner_text().split()[0]) == n  # the stopped reply got no more tokens
    assert page.get_by_role('button', name='Stop').count() == 0 or not page.get_by_role('button', name='Stop').is_visible()
    page.locator('.lp-strategy').last.scroll_into_view_if_needed()
    picture(page, 'chat_compare.png')
    # save the conversation, and load it in a new session
    with page.expect_download() as download:
        page.get_by_role('button', name='Save').click()
    saved = tmp_path/'chat.json'
    download.value.save_as(saved)
    data = json.loads(saved.read_text())
    exchanges = attempt + 2  # the replies until one was stopped, and the comparison
    assert data['format'] == 'llmplay-chat' and [m['role'] for m in data['messages']] == ['user', 'assistant'] * exchanges
    assert data['messages'][-3]['replies'][0]['stopped'] and len(data['messages'][-1]['replies']) == 3
    other = open_chat(browser, server)
    other.get_by_role('button', name='Load').click()
    other.locator('input[type=file]').set_input_files(saved)
    other.locator('.lp-strategy').first.wait_for(timeout=30000)
    assert other.get_by_test_id('stChatMessage').count() == 2 * exchanges and other.locator('.lp-stopped').count() == 1
    other.context.close()
    page.context.close()


def test_not_ready(browser, tmp_path):
    SHOTS.mkdir(exist_ok=True)
    chat = Chat(tmp_path)
    try:
        page = browser.new_context(viewport={'width': 1280, 'height': 800}).new_page()
        page.goto(chat.url)
        page.get_by_role('button', name='Build').wait_for(timeout=60000)
        assert f'llmplay run --root {tmp_path}' in page.get_by_test_id('stCode').first.inner_text()
        assert 'state 0' in page.locator('.lp-hero-sub').inner_text()
        picture(page, 'chat_not_ready.png')
        page.context.close()
    finally: chat.stop()

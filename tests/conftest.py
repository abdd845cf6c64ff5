"""Shared fixtures: keep tests off the network and out of the user's workspace; a tiny trained workspace; one headless Chromium per module."""
import os, socket, sys
from pathlib import Path

import pytest

os.environ.setdefault('IN_TEST', '1')
TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP/'tools'))  # cells.py, docsite.py: the tools the tests check

CHROMIUM = os.environ.get('LLMPLAY_CHROMIUM', '/usr/bin/chromium')  # Debian's; browsers cannot be downloaded here
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']


def free_port() -> int:
    "A TCP port on 127.0.0.1 that nothing listens on now."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='session')
def trained(tmp_path_factory):
    "A workspace at state 3 with a tiny model (the sample corpus, vocabulary 1024); tests must not change it."
    from llmplay import pipeline
    from llmplay.workspace import Workspace
    ws = Workspace(tmp_path_factory.mktemp('trained'))
    pipeline.run(ws, preset='tiny', source='sample', vocab_size=1024, progress=False)
    assert pipeline.status(ws)['state'] == 3
    return ws


@pytest.fixture(scope='module')
def browser():
    if not Path(CHROMIUM).exists() and not os.environ.get('CI'):
        pytest.skip(f'no Chromium at {CHROMIUM} (apt-get install chromium)')
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()

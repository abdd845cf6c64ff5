"""Shared fixtures: keep tests off the network and out of the user's workspace; one headless Chromium per module."""
import os
from pathlib import Path

import pytest

os.environ.setdefault('IN_TEST', '1')

CHROMIUM = os.environ.get('LLMPLAY_CHROMIUM', '/usr/bin/chromium')  # Debian's; browsers cannot be downloaded here
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']


@pytest.fixture(scope='module')
def browser():
    if not Path(CHROMIUM).exists() and not os.environ.get('CI'):
        pytest.skip(f'no Chromium at {CHROMIUM} (apt-get install chromium)')
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()

"""Run every notebook as one pytest test (nbdev's `test_nb`), each in a workspace of its own."""
import os
import pytest
import nbdev.test as nbt  # not `from nbdev.test import test_nb`: pytest would collect it
from nbdev.config import get_config

cfg = get_config()
NOTEBOOKS = sorted(p for p in cfg.nbs_path.glob('*.ipynb') if not p.name.startswith('_'))


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook(nb, tmp_path, monkeypatch):
    monkeypatch.setenv('LLMPLAY_ROOT', str(tmp_path/'workspace'))
    monkeypatch.setenv('IN_TEST', '1')
    ok, secs = nbt.test_nb(nb, skip_flags=cfg.tst_flags.split(), basepath=cfg.config_path)
    print(f'{nb.name}: {secs:.1f}s')
    assert ok, f'{nb.name} failed: the traceback is in the captured stderr above'

"""Check once, load once: a command reads and digests each artifact of a healthy workspace once."""
import collections, contextlib, io, os, shutil, sys

from llmplay import cli, pipeline
from llmplay.workspace import Workspace

OPENED = collections.Counter()
RECORDING = []


def _hook(event, args):
    if RECORDING and event == 'open' and isinstance(args[0], (str, bytes, os.PathLike)):
        OPENED[os.path.realpath(os.fsdecode(args[0]))] += 1


sys.addaudithook(_hook)  # an audit hook cannot be removed: it records only inside `opens`


@contextlib.contextmanager
def opens():
    "Count the files opened inside the block, by real path."
    OPENED.clear(); RECORDING.append(1)
    try: yield OPENED
    finally: RECORDING.clear()


def copy_of(ws: Workspace, tmp_path) -> Workspace:
    shutil.copytree(ws.root, tmp_path/'ws')
    return Workspace(tmp_path/'ws')


def artifact_reads(ws: Workspace, opened) -> dict[str, int]:
    return {name: opened[os.path.realpath(p)] for name, p in ws.artifacts().items()}


def test_run_reads_each_artifact_once(trained, tmp_path):
    ws = copy_of(trained, tmp_path)
    before = {n: p.read_bytes() for n, p in ws.artifacts().items()}
    with opens() as opened, contextlib.redirect_stdout(io.StringIO()) as out:
        assert cli.main(['run', '--root', str(ws.root)]) == 0
    reads = artifact_reads(ws, opened)
    assert 'state 3' in out.getvalue()
    assert all(n <= 1 for n in reads.values()), reads
    assert reads['model'] == 1 and reads['corpus'] == 1 and reads['tokenizer_model'] == 1, reads
    assert {n: p.read_bytes() for n, p in ws.artifacts().items()} == before  # a healthy workspace is left alone


def test_status_and_load_read_each_artifact_once(trained, tmp_path):
    ws = copy_of(trained, tmp_path)
    for call in (lambda: pipeline.status(ws), lambda: pipeline.load(ws)):
        with opens() as opened: call()
        reads = artifact_reads(ws, opened)
        assert all(n <= 1 for n in reads.values()) and reads['model'] == 1, reads

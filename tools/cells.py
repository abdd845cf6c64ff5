"""Notebook cell options (`#| key: value`), read the way nbdev reads them: the leading `#|` lines of a cell."""


def cell_options(source: str) -> tuple[dict, str]:
    "A cell's leading options (`#| eval: false` -> {'eval': 'false'}, `#| export app` -> {'export': 'app'}) and its source without them."
    opts, lines, i = {}, source.splitlines(), 0
    while i < len(lines) and (lines[i].startswith('#|') or not lines[i].strip()):
        text = lines[i][2:].strip()
        if lines[i].startswith('#|') and text:
            key, sep, value = text.partition(':') if ':' in text else (text.split()[0], '', ' '.join(text.split()[1:]))
            opts[key.strip()] = value.strip().lower()
        i += 1
    return opts, '\n'.join(lines[i:]).strip('\n')


def skipped_by_nbdev_test(source: str, flags: list[str]) -> bool:
    "Whether nbdev_test skips a code cell: `#| eval: false`, or one of the `tst_flags` directives."
    opts = cell_options(source)[0]
    return opts.get('eval') == 'false' or any(k in flags for k in opts)


if __name__ == '__main__':
    assert cell_options('#| export\nx = 1') == ({'export': ''}, 'x = 1')
    assert cell_options('#| export app\n#| eval: False\n\ny = 2\n#| not an option') == ({'export': 'app', 'eval': 'false'}, 'y = 2\n#| not an option')
    assert skipped_by_nbdev_test('#| eval: false\nx = 1', []) and skipped_by_nbdev_test('#| export\n#| slow\nx', ['slow'])
    assert not skipped_by_nbdev_test('x = 1\n#| eval: false', []) and not skipped_by_nbdev_test('#| export\nx = 1  # eval: false', ['slow'])
    print('ok')

"""The repository's documentation is self-contained.

Every relative link in a tracked Markdown file points at an existing file, and no tracked file
outside tests/ refers to material that is not part of the repository.
"""
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
# Inline Markdown links and images: [text](target) or ![alt](target "title").
LINK = re.compile(r'!?\[[^\]]*\]\(\s*(?:<([^>]+)>|([^)\s]+))(?:\s+"[^"]*")?\s*\)')
# Names of material outside the repository (this file lists them, hence tests/ is exempt).
FORBIDDEN = ('/work/', '../shared', 'shared/design', 'reference-spec', 'decisions.md',
             'environment.md')


def _tracked(*patterns):
    out = subprocess.run(['git', 'ls-files', '-z', '--', *patterns], cwd=REPO, check=True,
                         capture_output=True).stdout.decode()
    return [p for p in out.split('\0') if p and (REPO / p).is_file()]


def _relative_links(text):
    for bracketed, bare in LINK.findall(text):
        target = bracketed or bare
        if re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*:', target) or target.startswith('#'):
            continue  # URL (http:, mailto:, ...) or an anchor in the same file
        yield unquote(target.split('#', 1)[0])


def test_link_pattern_finds_relative_links():
    text = ('[a](docs/method.md#2-training) ![b](img/x.png "t") [c](https://x.org/y) '
            '[d](#top) [e](<docs/a b.md>)')
    assert list(_relative_links(text)) == ['docs/method.md', 'img/x.png', 'docs/a b.md']


@pytest.mark.parametrize('md', _tracked('*.md'))
def test_relative_links_resolve(md):
    path = REPO / md
    missing = [t for t in _relative_links(path.read_text(encoding='utf-8'))
               if not (path.parent / t).exists()]
    assert not missing, f'{md}: links to missing files {missing}'


def test_no_reference_to_material_outside_the_repository():
    offenders = []
    for rel in _tracked():
        if rel.startswith('tests/') or rel.startswith('data/'):
            continue
        try:
            text = (REPO / rel).read_text(encoding='utf-8')
        except UnicodeDecodeError:
            continue  # binary file
        for lineno, line in enumerate(text.splitlines(), 1):
            hits = [name for name in FORBIDDEN if name in line]
            if hits:
                offenders.append(f'{rel}:{lineno}: {", ".join(hits)}')
    assert not offenders, 'references to files outside the repository:\n' + '\n'.join(offenders)

"""The one atomic folder writer (tiny models, get_sd21): complete or absent, never half."""
import pytest

from mmseg.utils.io import atomic_folder


def test_folder_appears_complete_or_not_at_all(tmp_path):
    target = tmp_path / 'model'
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as scratch:
            (scratch / 'a.txt').write_text('half')
            raise RuntimeError('killed half way')
    assert list(tmp_path.iterdir()) == []  # no target, no scratch folder left
    target.mkdir()  # an empty target folder is replaced
    with atomic_folder(target) as scratch:
        assert scratch.parent == tmp_path and scratch.name.startswith('.model.')
        (scratch / 'a.txt').write_text('whole')
    assert (target / 'a.txt').read_text() == 'whole'
    assert [p.name for p in tmp_path.iterdir()] == ['model']

"""tools/make_tiny_sd.py: seeded, idempotent, atomic; the folder the backbone tests load."""
import pytest

from tools.make_tiny_sd import COMPONENTS, is_complete, main, make_tiny_sd


def _weights(folder):
    return {path.relative_to(folder): path.read_bytes()
            for path in sorted(folder.rglob('*.safetensors'))}


def test_seeded_idempotent_and_complete(tiny_sd_dir, tmp_path):
    assert is_complete(tiny_sd_dir) and all((tiny_sd_dir / c).is_dir() for c in COMPONENTS)
    stamp = (tiny_sd_dir / 'unet').stat().st_mtime_ns
    assert make_tiny_sd(tiny_sd_dir, seed=0) == tiny_sd_dir  # complete: returned untouched
    assert (tiny_sd_dir / 'unet').stat().st_mtime_ns == stamp
    assert main([str(tmp_path / 'same')]) == 0
    assert _weights(tmp_path / 'same') == _weights(tiny_sd_dir)
    make_tiny_sd(tmp_path / 'other', seed=1)
    assert _weights(tmp_path / 'other') != _weights(tiny_sd_dir)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]  # no temp left


def test_refuses_an_incomplete_non_empty_folder(tmp_path):
    (tmp_path / 'partial' / 'unet').mkdir(parents=True)
    with pytest.raises(FileExistsError, match='not a complete tiny SD folder'):
        make_tiny_sd(tmp_path / 'partial')
    (tmp_path / 'empty').mkdir()
    assert is_complete(make_tiny_sd(tmp_path / 'empty'))

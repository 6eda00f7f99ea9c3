"""Fixtures for the tests of the copyable ``diff`` package (see diff_helpers.py)."""
import pytest
from diff_helpers import diff


@pytest.fixture
def components(tiny_sd_dir):
    """Freshly loaded tiny Stable Diffusion parts (through the real loading code)."""
    return diff.load_sd_components(diff.DIFFConfig(model_id=str(tiny_sd_dir)))

"""Small helpers shared by models, tools and tests."""
import zlib
from typing import Dict, Mapping


def add_prefix(inputs: Mapping[str, object], prefix: str) -> Dict[str, object]:
    """Return a copy of ``inputs`` with every key written as ``f'{prefix}.{key}'``."""
    return {f'{prefix}.{name}': value for name, value in inputs.items()}


def stable_seed(identity: str, seed: int = 0) -> int:
    """A 63-bit seed that depends only on ``identity`` (e.g. an image path) and ``seed``.

    Python's ``hash`` is salted per process, so CRC32 is used instead: the same
    image gets the same seed in every run, process and machine.
    """
    return (zlib.crc32(identity.encode('utf-8')) + 1_000_003 * int(seed)) % (2**63 - 1)

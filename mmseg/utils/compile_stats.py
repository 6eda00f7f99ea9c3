"""How often torch.compile compiled: for benchmarks of ``compile: true`` (DIFF config).

Reads torch._dynamo's global counters (process-wide, every compiled function together)::

    from mmseg.utils.compile_stats import compile_stats
    before = compile_stats()
    ...  # warm-up, then timed iterations
    after = compile_stats()
    recompiled = after['graphs'] - before['graphs']   # 0 after warm-up for a fixed size
"""
from typing import Dict


def compile_stats() -> Dict[str, int]:
    """Counts since the process started (or since ``torch._dynamo.reset()``).

    Returns:
        dict: ``graphs`` (graphs compiled: the first compile and every recompilation,
        e.g. after a new shape; a graph break adds one graph per piece) and ``frames``
        (Python frames dynamo analysed, compiled or skipped). A rise of ``graphs`` between
        two points of a run is the number of (re)compilations in between.
    """
    from torch._dynamo.utils import counters
    return dict(graphs=int(counters['stats'].get('unique_graphs', 0)),
                frames=int(counters['frames'].get('total', 0)))

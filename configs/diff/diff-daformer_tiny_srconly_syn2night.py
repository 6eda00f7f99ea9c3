# Source-only baseline of diff-daformer_tiny_dacs_syn2night.py (experiment 71): the same tiny
# model, data, schedule and length, with DACS in source-only mode (docs/method.md §2.2):
# no teacher, no pseudo-labels, no mixing; the night images of each batch are ignored.
_base_ = ['./diff-daformer_tiny_dacs_syn2night.py']
model = dict(source_only=True)

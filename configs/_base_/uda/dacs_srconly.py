# DACS as a source-only training driver (the release's exp 50, docs/method.md §2.2):
# no EMA teacher, no pseudo-labels, no mixing; target images of the batch are ignored.
_base_ = ['./dacs.py']
uda = dict(source_only=True)

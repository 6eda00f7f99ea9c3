"""What every command-line tool shares: ``--cfg-options`` parsing and checking, error handling.

- :class:`DictAction` parses ``KEY=VALUE`` pairs like mmengine's, but keeps the spaces of a
  value (mmengine's removes them: ``data_root='my data/gta/'`` became ``mydata/gta/``).
- :func:`check_cfg_options` rejects a key that nothing reads (a typo such as
  ``default_hooks.checkpoint.intervall``) at start-up, naming the closest known key.
- :func:`run_cli` runs a tool's ``main`` and turns the project's known input errors into one
  line ``error: ...`` and exit status 2, without a traceback (``DIFF_TRACEBACK=1`` shows it).
"""
import argparse
import ast
import copy
import difflib
import inspect
import os
import sys
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from mmseg.engine.validation import UnknownConfigKeyError, accepted_keys

# Top-level keys read by SafeRunner / the tools besides those of mmengine's Runner.
PROJECT_TOP_LEVEL_KEYS = frozenset({
    'runner_type', 'model_wrapper_cfg', 'find_unused_parameters', 'git_rev', 'seed',
    'allow_other_sd', 'launcher', 'experiment_name', 'work_dir', 'resume', 'load_from',
    'target_domains', 'test_split', 'targets_for_evaluation_only', 'verbose',
    'checkpoint_selection', 'data_check'})

EXIT_USER_ERROR = 2


class ConfigValueError(ValueError):
    """A config value that cannot be right: malformed (``max_iters=abc``) or out of range."""


# Keys whose value must be a whole number of at least the given minimum (iterations, intervals,
# batch sizes). ``default_hooks.checkpoint.interval`` may also be -1 (mmengine: never save).
POSITIVE_INTEGERS = {'train_cfg.max_iters': 1, 'train_cfg.val_interval': 1,
                     'default_hooks.checkpoint.interval': 1, 'default_hooks.logger.interval': 1,
                     'train_dataloader.batch_size': 1, 'val_dataloader.batch_size': 1,
                     'test_dataloader.batch_size': 1, 'train_dataloader.num_workers': 0,
                     'val_dataloader.num_workers': 0, 'test_dataloader.num_workers': 0}


# --- --cfg-options values ---------------------------------------------------------------

def _nesting(text: str) -> Iterator[Tuple[int, str, int, str]]:
    """``(index, char, depth, quote)`` for each character of ``text``: the bracket depth and the
    open quote after reading it (a closing bracket with nothing open gives depth -1)."""
    depth, quote = 0, ''
    for index, char in enumerate(text):
        if quote:
            quote = '' if char == quote else quote
        elif char in '\'"':
            quote = char
        elif char in '([{':
            depth += 1
        elif char in ')]}':
            depth -= 1
        yield index, char, depth, quote


def _split_top_level(text: str) -> List[str]:
    """Split ``text`` at commas outside brackets and quotes."""
    parts, start = [], 0
    for index, char, depth, quote in _nesting(text):
        if char == ',' and depth == 0 and not quote:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def parse_value(text: str) -> Any:
    """A ``--cfg-options`` value: a Python literal, a list, or a string (spaces kept).

    ``'my data/gta/'`` and ``my data/gta/`` give the string ``my data/gta/``; ``1e-4``,
    ``True``/``true``, ``None``, ``[1, 2]``, ``(a, b)`` and ``a,b`` (a list) are parsed as
    mmengine's DictAction parses them.
    """
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in '\'"':
        return stripped[1:-1]
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        return float(stripped)  # nan, inf
    except ValueError:
        pass
    lowered = stripped.lower()
    if lowered in ('true', 'false'):
        return lowered == 'true'
    if lowered == 'none':
        return None
    if stripped[:1] in '[(' and stripped[-1:] in '])' and len(stripped) >= 2:
        items = [parse_value(p) for p in _split_top_level(stripped[1:-1]) if p.strip()]
        return tuple(items) if stripped[0] == '(' else items
    if ',' in stripped and len(_split_top_level(stripped)) > 1:
        return [parse_value(p) for p in _split_top_level(stripped)]
    return stripped


class DictAction(argparse.Action):
    """``--cfg-options KEY=VALUE ...`` into a dict; values parsed by :func:`parse_value`."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        options = copy.copy(getattr(namespace, self.dest, None) or {})
        for pair in values or []:
            if '=' not in pair:
                parser.error(f'{option_string}: expected KEY=VALUE, got {pair!r}')
            key, value = pair.split('=', 1)
            options[key.strip()] = parse_value(value)
        setattr(namespace, self.dest, options)


# --- --cfg-options keys -----------------------------------------------------------------

def _runner_keys() -> set:
    from mmengine.runner import Runner
    params = inspect.signature(Runner.__init__).parameters
    return set(params) - {'self'}


def _all_paths(node: Any, prefix: str = '') -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            path = f'{prefix}.{key}' if prefix else str(key)
            yield path
            yield from _all_paths(value, path)


def _suggest_anywhere(cfg: Mapping, key: str) -> List[str]:
    """Dotted paths (below the top level) whose last part is closest to ``key``."""
    paths: Dict[str, List[str]] = {}
    for path in _all_paths(cfg):
        if '.' in path:
            paths.setdefault(path.rsplit('.', 1)[-1], []).append(path)
    match = difflib.get_close_matches(key, sorted(paths), n=1, cutoff=0.7)
    return paths[match[0]][:3] if match else []


def _unknown(where: str, key: str, node: Mapping, accepted: set, cfg: Mapping) -> None:
    candidates = difflib.get_close_matches(key, sorted(accepted | set(map(str, node))), n=1,
                                           cutoff=0.6)
    if '.' not in where:  # a top-level key: the typo may be of a nested one
        candidates += _suggest_anywhere(cfg, key)
    hint = f" (did you mean {' or '.join(map(repr, candidates))}?)" if candidates else ''
    what = f'{node["type"]} accepts no argument' if 'type' in node else 'no config key'
    raise UnknownConfigKeyError(f'--cfg-options {where}: {what} {key!r}{hint}')


def _child(node: Any, key: str, where: str) -> Tuple[bool, Any]:
    """(found, value) of ``key`` in a dict or (numeric key) a list."""
    if isinstance(node, Mapping):
        return key in node, node.get(key)
    if isinstance(node, (list, tuple)) and key.isdigit():
        if int(key) >= len(node):
            raise UnknownConfigKeyError(f'--cfg-options {where}: index {key} out of range '
                                        f'(the list has {len(node)} items)')
        return True, node[int(key)]
    return False, None


def _unbalanced(text: str) -> bool:
    """True when ``text`` has an unclosed bracket or quote (``[acdc``, ``'abc``)."""
    depth, quote = 0, ''
    for _, _, depth, quote in _nesting(text):
        if depth < 0:
            return True
    return depth != 0 or bool(quote)


def check_option_value(dotted: str, value: Any, current: Any, found: bool) -> None:
    """A ``--cfg-options`` value must be well formed and of the type the config holds.

    Raises:
        ConfigValueError: naming the key, the value and what was expected.
    """
    if isinstance(value, str) and _unbalanced(value):
        raise ConfigValueError(f'--cfg-options {dotted}={value}: unbalanced brackets or quotes '
                               "(a list is written [a,b], a string with spaces 'a b')")
    if not found or isinstance(current, bool) or not isinstance(current, (int, float)):
        return
    if isinstance(value, str) or isinstance(value, bool):
        what = 'an integer' if isinstance(current, int) else 'a number'
        raise ConfigValueError(f'--cfg-options {dotted}={value}: expected {what} (the config '
                               f'holds {current!r})')
    if isinstance(current, int) and isinstance(value, float) and not value.is_integer():
        raise ConfigValueError(f'--cfg-options {dotted}={value}: expected an integer (the '
                               f'config holds {current!r})')


def _lookup(cfg: Mapping, dotted: str) -> Tuple[bool, Any]:
    node: Any = cfg
    for key in dotted.split('.'):
        if not isinstance(node, Mapping) or key not in node:
            return False, None
        node = node[key]
    return True, node


def check_value_ranges(cfg: Mapping, options: Optional[Mapping[str, Any]] = None,
                       source: str = '') -> None:
    """Iterations, intervals and batch sizes must be whole numbers in range.

    Args:
        cfg: The merged config.
        options: The ``--cfg-options`` given (a bad value from them is blamed on them).
        source: The config file (named for a bad value of the file).

    Raises:
        ConfigValueError: naming the key, where the value came from and what was expected.
    """
    if not isinstance(cfg, Mapping):
        source = source or (cfg.filename or '')
        cfg = cfg.to_dict()
    for key, minimum in POSITIVE_INTEGERS.items():
        found, value = _lookup(cfg, key)
        if not found or value is None:
            continue
        where = ' (from --cfg-options)' if key in (options or {}) else \
            (f' (in {source})' if source else '')
        allowed = value == -1 and key == 'default_hooks.checkpoint.interval'
        if isinstance(value, bool) or not isinstance(value, int) or (
                value < minimum and not allowed):
            extra = ' or -1 (never)' if key == 'default_hooks.checkpoint.interval' else ''
            raise ConfigValueError(f'{key} = {value!r}{where}: expected an integer >= '
                                   f'{minimum}{extra}')


def check_cfg_options(cfg: Mapping, options: Mapping[str, Any]) -> None:
    """Every dotted key of ``options`` must name something the config or the code reads.

    The rule, applied from the top down along each key:

    - a top-level key must exist in the config or be an argument of the runner (or one
      of :data:`PROJECT_TOP_LEVEL_KEYS`);
    - inside a ``type=`` dict (a constructor's keyword arguments) a key must exist or be
      accepted by that class (:func:`mmseg.engine.validation.accepted_keys`);
    - a plain dict without ``type`` (``data_prefix``, DIFF ``overrides``, ...) takes any key:
      its reader validates it; below a key that does not exist yet nothing is checked.

    Each value must be well formed and, where it replaces a number, a number
    (:func:`check_option_value`).

    Raises:
        UnknownConfigKeyError: naming the key and the closest known one.
        ConfigValueError: a malformed value, naming the key.
    """
    if not isinstance(cfg, Mapping):  # an mmengine Config
        cfg = cfg.to_dict()
    top_level = set(map(str, cfg)) | _runner_keys() | PROJECT_TOP_LEVEL_KEYS
    for dotted in options:
        parts = dotted.split('.')
        if parts[0] not in top_level:
            _unknown(dotted, parts[0], {}, top_level, cfg)
        node: Any = cfg
        for depth, key in enumerate(parts):
            where = '.'.join(parts[:depth + 1])
            found, value = _child(node, key, where)
            if not found:
                if isinstance(node, Mapping) and depth > 0 and 'type' in node:
                    accepted = accepted_keys(node)
                    if accepted is not None and key not in accepted:
                        _unknown(where, key, node, accepted, cfg)
                break
            node = value
        check_option_value(dotted, options[dotted], *reversed(_lookup(cfg, dotted)))


def set_mappings_with_non_string_keys(cfg: Any, options: Mapping[str, Any]) -> Dict[str, Any]:
    """Set the options whose value is a dict with non-string keys; return the others.

    mmengine's ``merge_from_dict`` fails on such a dict (``label_prompts={99: 'x'}``); it is
    set as given (replacing the old value), creating missing parent dicts.
    """
    rest = {}
    for dotted, value in options.items():
        if not (isinstance(value, Mapping) and any(not isinstance(k, str) for k in value)):
            rest[dotted] = value
            continue
        *parents, last = dotted.split('.')
        node = cfg
        for key in parents:
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
        node[last] = dict(value)
    return rest


# --- error handling ---------------------------------------------------------------------

def user_error_types() -> Tuple[type, ...]:
    """Exceptions that mean bad or missing input, reported in one line by :func:`run_cli`."""
    from mmseg.engine.checkpoint import (CheckpointMismatchError, NonFiniteWeightsError,
                                         NotACheckpointError, OtherStableDiffusionError)
    from mmseg.datasets.transforms.loading import BadInputFileError
    from mmseg.engine.guards import NonFiniteLossError
    from mmseg.models.backbones.diff.config import ConfigError

    from .preflight import DataCheckOptionError
    from .targets import TargetDomainError
    # OSError: a file that is missing or cannot be read or written (a corrupt image, a
    # read-only folder, a full disk: FileNotFoundError, PermissionError, DiskFullError, ...)
    return (OSError, ConfigError, UnknownConfigKeyError, CheckpointMismatchError,
            NotACheckpointError, NonFiniteWeightsError, OtherStableDiffusionError,
            NonFiniteLossError, BadInputFileError, DataCheckOptionError, ConfigValueError,
            TargetDomainError)


def run_cli(main: Callable[[Optional[Sequence[str]]], Any],
            argv: Optional[Sequence[str]] = None, extra_errors: Tuple[type, ...] = ()) -> Any:
    """Run a tool's ``main``; a known input error becomes ``error: <message>`` and exit 2.

    Args:
        main: The tool's ``main(argv)``.
        argv: Its arguments (None: ``sys.argv[1:]``).
        extra_errors: More exception types to report in one line.

    Set ``DIFF_TRACEBACK=1`` to get the full traceback instead.
    """
    try:
        return main(argv)
    except user_error_types() + tuple(extra_errors) as error:
        if os.environ.get('DIFF_TRACEBACK'):
            raise
        text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
        if isinstance(error, OSError) and error.strerror and error.filename:
            text = f'{error.strerror}: {error.filename}'
        print(f'error: {text}', file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


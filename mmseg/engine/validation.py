"""Config keys checked against what the code accepts, before anything runs.

A ``type=``-built dict (a hook, a loop, a dataset, a model, an optimiser) is passed to its
class as keyword arguments. mmengine accepts unknown keys silently where a class takes
``**kwargs`` (``CheckpointHook(intervall=1)`` failed only at the first save, hours later).
Here a key is accepted when the class's ``__init__`` names it, or, for a class that
forwards ``**kwargs``, when one of its base classes names it.
"""
import difflib
import inspect
from typing import Any, Iterable, List, Mapping, Optional, Set

# Keys a runner pops from an optimiser-wrapper dict before building it.
OPTIM_WRAPPER_EXTRA_KEYS = frozenset({'constructor', 'paramwise_cfg'})


class UnknownConfigKeyError(KeyError):
    """A config key (or ``--cfg-options`` key) that nothing reads."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ''


def registered_classes(type_name: Any) -> List[Any]:
    """Every class or function registered as ``type_name`` in mmseg's registries."""
    if not isinstance(type_name, str):
        return [type_name] if callable(type_name) else []
    import mmseg.registry as registry_module
    from mmengine.registry import Registry
    found = []
    for registry in vars(registry_module).values():
        if isinstance(registry, Registry):
            try:
                obj = registry.get(type_name)
            except Exception:  # a scope prefix that does not exist, ...
                obj = None
            if obj is not None and obj not in found:
                found.append(obj)
    return found


def _named_parameters(obj: Any) -> Optional[Set[str]]:
    """Keyword names of ``obj`` (a class: its ``__init__``); None if it takes any keyword."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    names.discard('self')
    if not any(p.kind == p.VAR_KEYWORD for p in params):
        return names
    if not inspect.isclass(obj):
        return None
    # **kwargs is forwarded to the base classes: what they name is accepted.
    for base in obj.__mro__[1:]:
        if base is object or '__init__' not in vars(base):
            continue
        more = _named_parameters_shallow(base)
        if more is None:
            return None
        names |= more
    return names


def _named_parameters_shallow(cls: type) -> Optional[Set[str]]:
    try:
        params = inspect.signature(vars(cls)['__init__']).parameters.values()
    except (TypeError, ValueError):
        return None
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    names.discard('self')
    return names


def accepted_keys(node: Mapping) -> Optional[Set[str]]:
    """Keys a ``type=`` dict may hold, or None when that cannot be known (any key accepted).

    The dict's own keys are not included; ``type`` always is.
    """
    classes = registered_classes(node.get('type'))
    if not classes:
        return None
    accepted = {'type'}
    for obj in classes:
        names = _named_parameters(obj)
        if names is None:
            return None
        accepted |= names
        if inspect.isclass(obj) and any(c.__name__.endswith('OptimWrapper') for c in obj.__mro__):
            accepted |= OPTIM_WRAPPER_EXTRA_KEYS
    return accepted


def closest(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or ''."""
    match = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ''


def check_type_kwargs(node: Mapping, where: str) -> None:
    """Every key of the ``type=`` dict ``node`` must be accepted by its class.

    Raises:
        UnknownConfigKeyError: naming ``where``, the key, the class and the closest
            accepted key.
    """
    accepted = accepted_keys(node)
    if accepted is None:
        return
    for key in node:
        if key not in accepted:
            raise UnknownConfigKeyError(
                f'{where}.{key}: {node["type"]} accepts no argument {key!r}'
                f'{closest(key, accepted)}; accepted: {", ".join(sorted(accepted))}')

"""What ``--resume`` says about the config it continues with.

The checkpoint records the resolved config of the run that wrote it (``meta.cfg``). On resume
every value that differs from the given config is listed. A resumed run continues with the
checkpoint's optimiser state (learning rates, betas, weight decay of every parameter group),
its learning-rate schedule state and its seed, so a change to ``optim_wrapper.optimizer``,
``optim_wrapper.paramwise_cfg``, ``param_scheduler`` or the seed would be printed as given and
silently replaced: such a change is refused (:class:`ResumeConfigError`). Every other
difference is applied as given, so the config written to the work dir is the one that runs. A
changed ``train_cfg.max_iters`` gets a notice naming where the schedule ends.

The recorded config text is parsed without running it (literals and ``dict(...)`` only), so a
checkpoint from elsewhere cannot execute code here.
"""
import ast
from typing import Any, Dict, List, Mapping, Optional, Tuple

#: keys (and everything below them) whose value the checkpoint's state replaces on resume
STATE_OVERRIDDEN = ('optim_wrapper.optimizer', 'optim_wrapper.paramwise_cfg',
                    'param_scheduler', 'randomness.seed', 'seed')
#: keys that differ between any two runs by design
IGNORED = ('work_dir', 'experiment_name', 'resume', 'load_from')


class ResumeConfigError(ValueError):
    """A resume would silently replace a given value by the checkpoint's."""


def _value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_value(item) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        return {_value(k): _value(v) for k, v in zip(node.keys, node.values)}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == 'dict' and not node.args):
        return {kw.arg: _value(kw.value) for kw in node.keywords}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _value(node.operand)
        return -inner if isinstance(inner, (int, float)) else ast.unparse(node)
    return ast.unparse(node)  # compared as text on both sides


def parse_config_text(text: str) -> Dict[str, Any]:
    """The top-level assignments of a config's text (mmengine's ``pretty_text``), not run."""
    values = {}
    for statement in ast.parse(text).body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(
                statement.targets[0], ast.Name):
            values[statement.targets[0].id] = _value(statement.value)
    return values


def _flatten(node: Any, prefix: str = '') -> Dict[str, Any]:
    if isinstance(node, Mapping) and node:
        flat: Dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flatten(value, f'{prefix}.{key}' if prefix else str(key)))
        return flat
    return {prefix: node}


def _under(key: str, roots: Tuple[str, ...]) -> bool:
    return any(key == root or key.startswith(root + '.') for root in roots)


_MISSING = '<not set>'


def config_differences(saved_text: str, given_text: str) -> List[Tuple[str, Any, Any]]:
    """``(key, checkpoint's value, given value)`` of every dotted key that differs."""
    saved = _flatten(parse_config_text(saved_text))
    given = _flatten(parse_config_text(given_text))
    return [(key, saved.get(key, _MISSING), given.get(key, _MISSING))
            for key in sorted(set(saved) | set(given))
            if not _under(key, IGNORED) and saved.get(key, _MISSING) != given.get(key, _MISSING)]


def _schedule_end(text: str) -> Optional[int]:
    schedulers = parse_config_text(text).get('param_scheduler')
    schedulers = [schedulers] if isinstance(schedulers, Mapping) else list(schedulers or [])
    ends = [s.get('end') for s in schedulers if isinstance(s, Mapping)]
    ends = [e for e in ends if isinstance(e, int)]
    return max(ends) if ends else None


def check_resume_config(saved_text: str, given_text: str, checkpoint: str) -> List[str]:
    """Compare the checkpoint's config with the given one; return the lines to log.

    Raises:
        ResumeConfigError: a value the checkpoint's state would replace differs (all such
            values are named).
    """
    differences = config_differences(saved_text, given_text)
    refused = [d for d in differences if _under(d[0], STATE_OVERRIDDEN)]
    if refused:
        listed = '; '.join(f'{k}: {old!r} in the checkpoint, {new!r} given'
                           for k, old, new in refused)
        raise ResumeConfigError(
            f'--resume {checkpoint}: {listed}. A resumed run continues with the checkpoint\'s '
            'optimiser, learning-rate schedule and seed, so these cannot change on resume; '
            'drop the change, or start a new run from these weights with --cfg-options '
            f'load_from={checkpoint} (without --resume)')
    if not differences:
        return [f'--resume {checkpoint}: the config equals the checkpoint\'s']
    lines = [f'--resume {checkpoint}: {len(differences)} value(s) differ from the checkpoint\'s '
             'config and are applied as given:']
    lines += [f'  {key}: {old!r} -> {new!r}' for key, old, new in differences]
    changed = {key: (old, new) for key, old, new in differences}
    if 'train_cfg.max_iters' in changed:
        old, new = changed['train_cfg.max_iters']
        end = _schedule_end(saved_text)
        schedule = (f'; the learning-rate schedule is the checkpoint\'s and ends at iteration '
                    f'{end}' if end is not None else '')
        lines.append(f'notice: training now ends at iteration {new} instead of {old}{schedule}')
    return lines

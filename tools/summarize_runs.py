"""Mean and spread over runs (seeds): mIoU per domain and every class IoU, Markdown + CSV.

Usage::

    python tools/summarize_runs.py work_dirs/local-exp0/*_s0_* work_dirs/local-exp0/*_s1_* ...
    python tools/summarize_runs.py WORK_DIRS... --csv summary.csv --md summary.md

Each run's metrics come from what the run wrote:

* ``<work_dir>/test_metrics.json`` (``tools/test.py``; it names its checkpoint), else
* the LAST validation of the training log, ``<work_dir>/<timestamp>/vis_data/scalars.json``
  (the line with ``<domain>/mIoU`` keys and the highest ``step``), i.e. the last checkpoint
  (the release's choice); with ``--best DOMAIN`` the validation with the highest
  ``<DOMAIN>/mIoU`` instead (selecting on a target's validation set is not domain
  generalisation: say so when reporting it).

Seed, settings and identity come from each run's own record, the resolved config that
``tools/train.py`` writes into its work dir (``<work_dir>/<config name>.py``), never from the
folder name: runs are grouped by that config without the keys that name a run rather than a
setting (seed, work dir, run name, code revision, resume), and the tool prints what it grouped
and, between groups, the keys that differ. The same run given twice (the same folder, or a
copy: the same recorded run name) is refused. The spread is the SAMPLE standard deviation
(ddof = 1), as papers usually report; it is undefined (n/a) for a single run. A class that is
NaN in a run (absent from labels and predictions) is left out of that class's mean, and its
``n`` says so.
"""
import argparse
import csv
import hashlib
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmseg.utils import CLASSES

STD_NOTE = 'std: sample standard deviation (ddof=1) over the runs'
_NAME = re.compile(r'^(?:\d{6}_\d{4}_)?(?P<group>.+?)_s(?P<seed>\d+)(?:_[0-9a-f]{5})?$')
# Config keys that name a run, not a setting: left out when grouping.
RUN_KEYS = ('seed', 'work_dir', 'experiment_name', 'git_rev', 'resume', 'load_from', 'launcher',
            'verbose')


class SummaryError(ValueError):
    """Runs that cannot be summarised as given (the message says why)."""


@dataclass
class Run:
    """One run's metrics and where they came from."""
    work_dir: Path
    group: str
    seed: Optional[int]
    metrics: Dict[str, float]
    source: str
    identity: str = ''  # the recorded run name (experiment_name)
    settings: Dict[str, Any] = field(default_factory=dict)  # the config without RUN_KEYS


@dataclass
class Group:
    """Runs of the same settings (different seeds)."""
    name: str
    runs: List[Run] = field(default_factory=list)

    @property
    def domains(self) -> List[str]:
        """Domains (and subsets such as ``acdc/fog``) with an mIoU, in first-seen order."""
        seen: List[str] = []
        for run in self.runs:
            for key in run.metrics:
                if key.endswith('/mIoU') and key[:-len('/mIoU')] not in seen:
                    seen.append(key[:-len('/mIoU')])
        return seen

    def rows(self) -> List[str]:
        """Metric keys summarised: per domain its mIoU, then the class IoUs of each domain."""
        keys = [f'{d}/mIoU' for d in self.domains]
        for domain in self.domains:
            if domain.count('/') == 0:
                keys += [f'{domain}/IoU.{c}' for c in CLASSES
                         if any(f'{domain}/IoU.{c}' in r.metrics for r in self.runs)]
        return keys


def mean_std(values: Sequence[float]):
    """(mean, sample std with ddof=1, n) over the finite values; NaN where undefined."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    n = len(finite)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(finite) / n
    std = math.sqrt(sum((v - mean)**2 for v in finite) / (n - 1)) if n > 1 else math.nan
    return mean, std, n


def _flat(node: Any, prefix: str = '') -> Dict[str, Any]:
    """Dotted keys of a nested config (lists kept whole)."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: Dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flat(value, f'{prefix}.{key}' if prefix else str(key)))
    return out


def read_record(work_dir: Path) -> Tuple[Path, Dict[str, Any]]:
    """(file, config dict) of the resolved config ``tools/train.py`` wrote into ``work_dir``.

    Raises:
        FileNotFoundError: no config record in the folder.
    """
    from mmengine.config import Config
    records = sorted(work_dir.glob('*.py'), key=lambda p: p.stat().st_mtime)
    records = [p for p in records if 'experiment_name' in p.read_text(encoding='utf-8')]
    if not records:
        raise FileNotFoundError(f'{work_dir}: no config record (the <config name>.py that '
                                'tools/train.py writes into its work dir): cannot tell the '
                                "run's seed and settings")
    return records[-1], Config.fromfile(str(records[-1])).to_dict()


def _group_name(record: Path) -> str:
    match = _NAME.match(record.stem)
    return match['group'] if match else record.stem


def settings_of(config: Dict[str, Any]) -> Dict[str, Any]:
    """The config as dotted keys without the keys that name a run (seed, work dir, ...)."""
    flat = _flat({k: v for k, v in config.items() if k not in RUN_KEYS})
    flat.pop('randomness.seed', None)
    return flat


def settings_id(settings: Dict[str, Any]) -> str:
    """A short hash of the settings (the group key)."""
    text = json.dumps(settings, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _scalar_lines(work_dir: Path) -> List[dict]:
    lines = []
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            if line.strip():
                lines.append(json.loads(line))
    return lines


def read_run(work_dir: Path, best: Optional[str] = None) -> Run:
    """A run's metrics (see the module docstring for the sources).

    Raises:
        FileNotFoundError: the folder holds neither test_metrics.json nor a validation.
    """
    work_dir = Path(work_dir)
    record, config = read_record(work_dir)
    seed = (config.get('randomness') or {}).get('seed', config.get('seed'))
    settings = settings_of(config)
    group = f'{_group_name(record)} [settings {settings_id(settings)}]'
    ident = dict(identity=str(config.get('experiment_name', '')), settings=settings)
    test_json = work_dir / 'test_metrics.json'
    if test_json.is_file() and best is None:
        data = json.loads(test_json.read_text())
        metrics = {k: math.nan if v is None else float(v) for k, v in data['metrics'].items()}
        return Run(work_dir, group, seed, metrics,
                   f'test_metrics.json (checkpoint {Path(str(data.get("checkpoint"))).name})',
                   **ident)
    vals = [d for d in _scalar_lines(work_dir) if any(k.endswith('mIoU') for k in d)]
    if not vals:
        raise FileNotFoundError(f'{work_dir}: no test_metrics.json and no validation in '
                                '*/vis_data/scalars.json (did the run validate?)')
    if best is None:
        chosen, how = max(vals, key=lambda d: d.get('step', 0)), 'last'
    else:
        key = f'{best}/mIoU'
        if not any(key in d for d in vals):
            raise KeyError(f'{work_dir}: no {key} in its validations; domains: '
                           f'{sorted({k for d in vals for k in d if k.endswith("mIoU")})}')
        chosen, how = max(vals, key=lambda d: d.get(key, -math.inf)), f'best {key}'
    metrics = {k: float(v) for k, v in chosen.items()
               if isinstance(v, (int, float)) and '/' in k}
    step = chosen.get('step')
    ckpt = work_dir / f'iter_{step}.pth'
    where = f', checkpoint {ckpt.name}' if ckpt.is_file() else ''
    return Run(work_dir, group, seed, metrics, f'validation at iter {step} ({how}{where})',
               **ident)


def summarize(work_dirs: Sequence[Path], best: Optional[str] = None) -> List[Group]:
    """Read every run and group them by settings (the recorded config without the seed).

    Raises:
        SummaryError: a run given twice (the same folder, or a copy with the same run name).
    """
    groups: Dict[str, Group] = {}
    seen_dirs: Dict[Path, Path] = {}
    seen_ids: Dict[str, Path] = {}
    for work_dir in map(Path, work_dirs):
        resolved = work_dir.resolve()
        if resolved in seen_dirs:
            raise SummaryError(f'{work_dir} is given twice (as {seen_dirs[resolved]}): each run '
                               'counts once')
        seen_dirs[resolved] = work_dir
        run = read_run(work_dir, best)
        if run.identity and run.identity in seen_ids:
            raise SummaryError(f'{work_dir} and {seen_ids[run.identity]} are the same run '
                               f'(recorded run name {run.identity}): one is a copy of the other; '
                               'give each run once')
        seen_ids[run.identity] = work_dir
        groups.setdefault(run.group, Group(run.group)).runs.append(run)
    for group in groups.values():
        group.runs.sort(key=lambda r: (r.seed is None, r.seed, str(r.work_dir)))
    return list(groups.values())


def grouping_text(groups: Sequence[Group], shown: int = 5) -> str:
    """What was grouped: each group's runs and seeds, and the keys in which groups differ."""
    lines = []
    first = groups[0].runs[0].settings if groups else {}
    for group in groups:
        seeds = ', '.join(str(r.seed) for r in group.runs)
        lines.append(f'grouped {len(group.runs)} run(s) as {group.name} (same recorded config '
                     f'except the seed; seeds {seeds})')
        differ = sorted(k for k in set(first) | set(group.runs[0].settings)
                        if first.get(k) != group.runs[0].settings.get(k))
        if differ:
            more = f' and {len(differ) - shown} more' if len(differ) > shown else ''
            lines.append(f'  differs from {groups[0].name} in: {", ".join(differ[:shown])}{more}')
    return '\n'.join(lines)


def _label(run: Run) -> str:
    return f's{run.seed}' if run.seed is not None else run.work_dir.name


def _fmt(value: float) -> str:
    return 'n/a' if math.isnan(value) else f'{value:.2f}'


def markdown_table(group: Group) -> str:
    """One Markdown table: a row per metric, a column per run, mean ± std and n."""
    labels = [_label(r) for r in group.runs]
    lines = [f'### {group.name}', '',
             f'{len(group.runs)} run(s); values in %; {STD_NOTE}.', '']
    lines += [f'- {_label(r)}: `{r.work_dir}`: {r.source}' for r in group.runs]
    lines += ['', '| metric | ' + ' | '.join(labels) + ' | mean ± std | n |',
              '|---|' + '---:|' * (len(labels) + 2)]
    for key in group.rows():
        values = [r.metrics.get(key, math.nan) for r in group.runs]
        mean, std, n = mean_std(values)
        lines.append(f'| {key} | ' + ' | '.join(_fmt(v) for v in values)
                     + f' | {_fmt(mean)} ± {_fmt(std)} | {n} |')
    return '\n'.join(lines)


def csv_text(groups: Sequence[Group]) -> str:
    """One CSV row per (group, metric): mean, std (ddof=1), n and every run's value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    width = max(len(g.runs) for g in groups)
    writer.writerow(['group', 'metric', 'mean', 'std_ddof1', 'n']
                    + [f'run{i + 1}' for i in range(width)])
    for group in groups:
        writer.writerow([group.name, 'runs', '', '', len(group.runs)]
                        + [f'{_label(r)}: {r.source}' for r in group.runs])
        for key in group.rows():
            values = [r.metrics.get(key, math.nan) for r in group.runs]
            mean, std, n = mean_std(values)
            writer.writerow([group.name, key, _csv(mean), _csv(std), n]
                            + [_csv(v) for v in values])
    return out.getvalue()


def _csv(value: float) -> str:
    return '' if math.isnan(value) else repr(round(value, 6))


def main(argv: Optional[Sequence[str]] = None) -> List[Group]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dirs', nargs='+', type=Path, help='run folders (one per seed)')
    parser.add_argument('--best', metavar='DOMAIN',
                        help='use the validation with the best <DOMAIN>/mIoU instead of the '
                        'last one (not domain generalisation if DOMAIN is a target)')
    parser.add_argument('--csv', type=Path, help='write the CSV here (default: printed)')
    parser.add_argument('--md', type=Path, help='also write the Markdown here')
    args = parser.parse_args(argv)
    groups = summarize(args.work_dirs, args.best)
    markdown = '\n\n'.join(markdown_table(g) for g in groups) + '\n'
    table = csv_text(groups)
    print(grouping_text(groups) + '\n')
    print(markdown)
    if args.md:
        args.md.write_text(markdown)
    if args.csv:
        args.csv.write_text(table)
        print(f'CSV: {args.csv}')
    else:
        print(table)
    return groups


if __name__ == '__main__':
    from mmseg.apis.cli import run_cli
    run_cli(main, extra_errors=(SummaryError, ))  # one line `error: ...`, exit status 2

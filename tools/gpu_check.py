"""`make gpu-check`: the GPU-marked tests and the full-size training benchmark, one report.

On a machine without a CUDA GPU (or whose ``python3`` has no torch) it says so and exits 0.
On a CUDA machine it uses the Python it runs under (the system's, with its own torch; no
virtual environment, no package index): packages the project needs that this Python lacks are
installed from wheel files in ``--wheels`` (filled beforehand by ``make gpu-wheels`` on a
machine with PyPI) by unpacking them into ``<out>/site`` (no pip needed), never into the
system. Then, within ``--budget``
seconds:

1. ``pytest -m gpu`` over the test files that hold GPU-marked tests;
2. ``tools/benchmark_train.py`` on the SD 2.1 architecture with random weights at the full
   size (512x512 crop, 1024x512 evaluation image), float16 and bfloat16, eager (both paths)
   and compiled (the optimised path).

It writes ``<out>/report.md`` and ``<out>/report.json``. Only the standard library is imported
at the top: the project's dependencies may not be importable until the wheels are installed.

Usage::

    python3 tools/gpu_check.py [--wheels .gpu-wheels] [--out work_dirs/gpu-check] [--budget 450]
    python3 tools/gpu_check.py --download .gpu-wheels     # on a machine with PyPI
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
# Python of the offline GPU machine the wheels are downloaded for.
TARGET_PYTHON = '3.12'
PLATFORMS = ('manylinux2014_x86_64', 'manylinux_2_17_x86_64', 'manylinux_2_28_x86_64')
# Distribution -> module it provides. The GPU machine has torch, transformers, safetensors,
# accelerate and what they pull in (numpy, pyyaml, regex, tqdm, huggingface-hub, packaging,
# filelock, jinja2, ...), and lacks the first group; the rest are small dependencies of those
# that the machine may lack too. Each is installed only if its module is missing. Left out for
# their size, and assumed present (common on GPU images): opencv-python
# (71 MB), scipy, matplotlib, pillow.
WHEELS: Dict[str, str] = {
    'diffusers': 'diffusers', 'mmengine': 'mmengine', 'mmcv-lite': 'mmcv', 'kornia': 'kornia',
    'addict': 'addict', 'yapf': 'yapf', 'termcolor': 'termcolor',
    'cityscapesscripts': 'cityscapesscripts',
    # dependencies of the above
    'kornia_rs': 'kornia_rs', 'platformdirs': 'platformdirs', 'importlib_metadata':
    'importlib_metadata', 'zipp': 'zipp', 'lazy-importer': 'lazy_importer', 'rich': 'rich',
    'markdown-it-py': 'markdown_it',
    'mdurl': 'mdurl', 'pygments': 'pygments', 'requests': 'requests', 'certifi': 'certifi',
    'charset-normalizer': 'charset_normalizer', 'idna': 'idna', 'urllib3': 'urllib3',
    'appdirs': 'appdirs', 'pyquaternion': 'pyquaternion', 'coloredlogs': 'coloredlogs',
    'humanfriendly': 'humanfriendly',
    # the test runner (pyproject's xdist options are overridden, so xdist is not needed)
    'pytest': 'pytest', 'pluggy': 'pluggy', 'iniconfig': 'iniconfig',
}
# Modules the checks import; a missing one that no wheel provides is reported by name.
REQUIRED_MODULES = ('torch', 'transformers', 'safetensors', 'numpy', 'yaml', 'cv2', 'PIL',
                    'diffusers', 'mmengine', 'mmcv', 'kornia', 'pytest')
# (dtype, compiled) benchmark runs, in order of priority.
RUNS = (('float16', False), ('bfloat16', False), ('float16', True), ('bfloat16', True))
TEST_TIMEOUT_S = 150


# ------------------------------------------------------------------------------- the wheels
def pinned_versions(requirements: Path = REPO_ROOT / 'requirements.txt') -> Dict[str, str]:
    """``name==version`` pins of requirements.txt, by lower-case distribution name."""
    pins = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r'^\s*([A-Za-z0-9_.-]+)==([^\s;#]+)', line)
        if match:
            pins[match.group(1).lower().replace('_', '-')] = match.group(2)
    return pins


def download_wheels(folder: Path) -> int:
    """Fill ``folder`` with Python 3.12 manylinux wheels of :data:`WHEELS` (no dependencies)."""
    pins = pinned_versions()
    specs = []
    for name in WHEELS:
        version = pins.get(name.lower().replace('_', '-'))
        specs.append(f'{name}=={version}' if version else name)
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
               '--python-version', TARGET_PYTHON, '--dest', str(folder)]
    for platform in PLATFORMS:
        command += ['--platform', platform]
    print(' '.join(command + specs))
    code = subprocess.call(command + specs)
    size = sum(f.stat().st_size for f in folder.glob('*.whl'))
    print(f'{folder}: {len(list(folder.glob("*.whl")))} wheels, {size / 2**20:.1f} MiB')
    return code


def _wheel_for(folder: Path, distribution: str) -> Optional[Path]:
    stem = re.sub(r'[-_.]+', '_', distribution).lower()
    for wheel in sorted(folder.glob('*.whl')):
        if re.sub(r'[-_.]+', '_', wheel.name.split('-')[0]).lower() == stem:
            return wheel
    return None


def install_missing(folder: Path, site: Path) -> List[str]:
    """Install the wheels whose module this Python lacks into ``site``; their names."""
    missing = [dist for dist, module in WHEELS.items() if importlib.util.find_spec(module) is None]
    if not missing:
        return []
    wheels = {dist: _wheel_for(folder, dist) for dist in missing}
    absent = [dist for dist, wheel in wheels.items() if wheel is None]
    if absent:
        print(f'gpu-check: no wheel in {folder} for {absent} (run `make gpu-wheels` on a machine '
              'with PyPI and carry the folder); trying without them')
    site.mkdir(parents=True, exist_ok=True)
    for wheel in wheels.values():
        if wheel is not None:
            # A wheel is a zip of what goes into site-packages: unpacking it is what
            # `pip install --target` does for these (no scripts needed), and needs no pip and
            # does not touch the system's packages (PEP 668).
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(site)
    return [dist for dist in missing if wheels[dist] is not None]


# -------------------------------------------------------------------------------- the checks
def _run(command: Sequence[str], env: Dict[str, str], timeout: float, log: Path) -> Dict:
    """Run ``command`` in the repository; its output goes to ``log``."""
    start = time.perf_counter()
    with open(log, 'w') as stream:
        try:
            code = subprocess.call(list(command), cwd=REPO_ROOT, env=env, stdout=stream,
                                   stderr=subprocess.STDOUT, timeout=max(timeout, 1))
        except subprocess.TimeoutExpired:
            code = 'timeout'
    tail = log.read_text(errors='replace').splitlines()[-15:]
    return dict(rc=code, seconds=round(time.perf_counter() - start, 1), log=str(log), tail=tail)


def gpu_test_files() -> List[str]:
    """Test files that hold a ``pytest.mark.gpu`` test (only they are collected)."""
    return sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / 'tests').rglob('test_*.py')
                  if 'mark.gpu' in p.read_text(errors='replace'))


def run_checks(out: Path, env: Dict[str, str], budget: float) -> Dict:
    """The GPU tests, then the benchmarks while the budget lasts."""
    deadline = time.monotonic() + budget
    report: Dict = dict(tests=None, runs=[])
    files = gpu_test_files()
    report['tests'] = _run([sys.executable, '-m', 'pytest', '-o', 'addopts=', '-q', '-ra',
                            '-p', 'no:cacheprovider', '-m', 'gpu', *files], env,
                           min(TEST_TIMEOUT_S, deadline - time.monotonic()), out / 'tests.log')
    report['tests']['files'] = files
    for dtype, compiled in RUNS:
        name = f'sd21-512-{dtype}' + ('-compiled' if compiled else '')
        left = deadline - time.monotonic()
        if left < 60:
            report['runs'].append(dict(name=name, dtype=dtype, compile=compiled,
                                       rc='skipped: time budget spent'))
            continue
        result_file = out / f'{name}.json'
        command = [sys.executable, 'tools/benchmark_train.py', '--model', 'sd21', '--device',
                   'cuda', '--dtype', dtype, '--size', '512', '--eval-size', '512', '1024',
                   '--iters', '3', '--warmup', '1', '--threads', '0', '--out', str(result_file)]
        if compiled:
            command += ['--compile', '--paths', 'optimized']
        run = dict(name=name, dtype=dtype, compile=compiled,
                   **_run(command, env, left, out / f'{name}.log'))
        if run['rc'] == 0 and result_file.is_file():
            run['result'] = json.loads(result_file.read_text())
        report['runs'].append(run)
    return report


def format_markdown(report: Dict) -> str:
    """The Markdown report."""
    env = report['environment']
    lines = ['# make gpu-check', '', f'{env["gpu"]}, torch {env["torch"]}, Python {env["python"]}'
             f', {env["date"]}. Installed from wheels: {", ".join(env["installed"]) or "none"}.',
             '', f'## GPU tests (`pytest -m gpu`): rc {report["tests"]["rc"]}', '', '```',
             *report['tests']['tail'][-5:], '```', '',
             '## Training benchmark: SD 2.1 architecture, random weights, 512x512 crop, '
             '1024x512 evaluation image, batch 1, k = 1', '',
             '| dtype | compiled | path | s/iter | UNet calls x rows | s/eval image | peak GiB '
             '(train) | exp 50 projected h | graphs after warm-up |',
             '|---|---|---|---|---|---|---|---|---|']
    for run in report['runs']:
        if 'result' not in run:
            lines.append(f'| {run["dtype"]} | {run["compile"]} | - | failed: rc {run["rc"]} '
                         f'(see {Path(run.get("log", "-")).name}) | | | | | |')
            continue
        for path, values in run['result']['paths'].items():
            train, evaluation = values['train'], values['eval']
            shape = ', '.join(f'{n} x {r}' for r, n in train['rows_per_call'].items())
            lines.append(f'| {run["dtype"]} | {run["compile"]} | {path} | '
                         f'{train["seconds_per_iter"]:.3f} | {shape} | '
                         f'{evaluation["seconds_per_image"]:.3f} | '
                         f'{train["peak_memory_mib"] / 1024:.1f} | '
                         f'{values["projection"]["total_hours"]:.1f} | '
                         f'{train["graphs_compiled_after_warmup"]} |')
    return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--wheels', type=Path, default=REPO_ROOT / '.gpu-wheels')
    parser.add_argument('--out', type=Path, default=REPO_ROOT / 'work_dirs/gpu-check')
    parser.add_argument('--budget', type=float, default=450, help='seconds for all checks')
    parser.add_argument('--download', type=Path, default=None, metavar='DIR',
                        help='only fill DIR with the wheels (needs PyPI, no GPU)')
    args = parser.parse_args(argv)
    if args.download is not None:
        return download_wheels(args.download)
    if importlib.util.find_spec('torch') is None:
        print(f'gpu-check: {sys.executable} has no torch, so no CUDA GPU to check; skipped.')
        return 0
    import torch
    if not torch.cuda.is_available():
        print(f'gpu-check: no CUDA GPU on this machine (torch {torch.__version__}); skipped.')
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    site = args.out / 'site'
    installed = install_missing(args.wheels, site)
    env = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1',
               PYTHONPATH=os.pathsep.join(filter(None, [str(site), str(REPO_ROOT),
                                                        os.environ.get('PYTHONPATH')])))
    # The checks run in subprocesses with that PYTHONPATH; look the modules up the same way.
    extra = [str(site), str(REPO_ROOT)]
    absent = [m for m in REQUIRED_MODULES
              if importlib.machinery.PathFinder.find_spec(m, extra) is None
              and importlib.util.find_spec(m) is None]
    if absent:
        print(f'gpu-check: modules still missing: {absent}; the checks that need them will fail')
    report = dict(environment=dict(gpu=torch.cuda.get_device_name(), torch=torch.__version__,
                                   python=sys.version.split()[0], installed=installed,
                                   missing=absent,
                                   date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())))
    report.update(run_checks(args.out, env, args.budget))
    (args.out / 'report.json').write_text(json.dumps(report, indent=2) + '\n')
    markdown = format_markdown(report)
    (args.out / 'report.md').write_text(markdown)
    print(markdown)
    print(f'gpu-check: wrote {args.out / "report.md"} and report.json')
    failed = report['tests']['rc'] != 0 or any(r['rc'] != 0 for r in report['runs'])
    return 1 if failed else 0


if __name__ == '__main__':
    raise SystemExit(main())

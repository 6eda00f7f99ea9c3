"""tools/benchmark_train.py on the tiny model: both paths, JSON results, independent UNet counts."""
import json
import math

import pytest
import torch

from mmseg.models.backbones.diff import DIFFConfig
from tools import benchmark_train


@pytest.fixture(scope='module')
def result(tiny_sd_dir, tmp_path_factory, repo_root):
    out = tmp_path_factory.mktemp('benchmark') / 'result.json'
    assert benchmark_train.main(['--model', 'tiny', '--tiny-dir', str(tiny_sd_dir), '--device',
                                 'cpu', '--size', '64', '--eval-size', '64', '128', '--iters',
                                 '1', '--warmup', '0', '--out', str(out)]) == 0
    return json.loads(out.read_text())


def _released_steps(repo_root):
    """(UNet calls of one optimised pass, of one straightforward pass) of diff_config.yaml."""
    config = DIFFConfig.from_yaml(repo_root / 'diff_config.yaml')
    return max(config.saved_steps) + 1, len(config.timesteps)


def test_json_has_both_paths_with_finite_positive_numbers(result):
    assert set(result['paths']) == {'straightforward', 'optimized'}
    assert result['environment']['model'] == 'tiny' and result['environment']['size'] == 64
    for path in result['paths'].values():
        train, evaluation, projection = path['train'], path['eval'], path['projection']
        assert train['seconds_per_iter'] > 0 and len(train['seconds']) == 1
        assert evaluation['seconds_per_image'] > 0 and evaluation['size'] == [64, 128]
        assert train['peak_memory_mib'] >= 0 and evaluation['peak_memory_mib'] >= 0
        assert all(math.isfinite(v) for v in train['losses'].values())
        assert {'decode_w_seg.loss_seg', 'decode_wo_seg.loss_seg',
                'consistency_loss'} <= set(train['losses'])
        assert projection['iterations'] == 40000 and projection['validations'] == 10
        assert projection['val_images'] == 500 and not projection['at_release_sizes']
        expected = (40000 * train['seconds_per_iter']
                    + 10 * 500 * evaluation['seconds_per_image']) / 3600
        assert projection['total_hours'] == pytest.approx(expected)
    assert result['speedup']['train'] > 0 and result['speedup']['eval'] > 0


def test_hook_counts_agree_with_last_usage(result):
    for path in result['paths'].values():
        for phase in (path['train'], path['eval']):
            usage = phase['last_usage']
            assert (phase['unet_calls'], phase['unet_rows'], phase['rows_per_call']) == (
                usage['calls'], usage['rows'], usage['rows_per_call'])


def test_unet_calls_per_iteration_at_the_released_timesteps(result, repo_root):
    """k = 1 prompted class: one merged call of (2 + k) rows per step vs the release's passes."""
    useful, released = _released_steps(repo_root)
    fast, slow = result['paths']['optimized'], result['paths']['straightforward']
    assert fast['prompted_classes'] == [1]
    assert fast['train']['rows_per_call'] == {'3': useful}
    assert slow['train']['rows_per_call'] == {'3': released, '2': released}
    # Evaluation: duplicate unconditional/conditional rows evaluated once in the optimised path.
    assert fast['eval']['rows_per_call'] == {'1': useful}
    assert slow['eval']['rows_per_call'] == {'2': released}


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the branch without CUDA')
def test_gpu_check_without_cuda_says_so_and_exits_0(capsys, tmp_path):
    from tools import gpu_check
    assert gpu_check.main(['--out', str(tmp_path / 'gpu-check')]) == 0
    assert 'no CUDA GPU' in capsys.readouterr().out
    assert not (tmp_path / 'gpu-check').exists()


def test_gpu_check_finds_wheels_by_distribution_name(tmp_path):
    from tools import gpu_check
    for name in ('mmcv_lite-2.1.0-py2.py3-none-any.whl', 'markdown_it_py-4.3.0-py3-none-any.whl'):
        (tmp_path / name).touch()
    assert gpu_check._wheel_for(tmp_path, 'mmcv-lite').name.startswith('mmcv_lite-2.1.0')
    assert gpu_check._wheel_for(tmp_path, 'markdown-it-py').name.startswith('markdown_it_py')
    assert gpu_check._wheel_for(tmp_path, 'mmengine') is None
    assert gpu_check.pinned_versions()['diffusers'] == '0.42.1'

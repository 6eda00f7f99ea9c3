"""tools/show_features.py: PCA figures of the recorded features, and their cross-domain stability.

The maths (class means at a coarse stride, cosines, PCA directions, per-step channels) is
checked against hand computations on tiny hand-made tensors; the figure-writing paths run on
the tiny model and the synthetic domains.
"""
import csv
import json
import os
import subprocess
import sys

import cv2
import pytest
import torch

from mmseg.models.backbones.diff.layout import Layer, Level
from mmseg.utils.feature_views import (class_cosines, class_sums, pca_basis, project,
                                       split_steps, to_rgb)
from test_tools.workspace import DEMO, REPO, SHORT_TIMESTEPS
from tools.show_features import ShowFeaturesError, main, parse_args


def test_class_means_and_cosines_by_hand():
    # one image, 2 channels, a 1x2 feature map over a 2x4 label map (blocks of 2x2 pixels)
    features = torch.tensor([[[[1.0, 3.0]], [[2.0, -1.0]]]])
    labels = torch.tensor([[[0, 0, 1, 1],
                            [0, 1, 1, 255]]])
    sums, weights = class_sums(features, labels, num_classes=3)
    # left pixel (1, 2): 3/4 class 0, 1/4 class 1; right pixel (3, -1): 3/4 class 1, 1 ignored
    assert weights.tolist() == [0.75, 1.0, 0.0]
    assert sums[0].tolist() == [0.75, 1.5]
    assert sums[1].tolist() == [0.25 * 1 + 0.75 * 3, 0.25 * 2 + 0.75 * -1]
    # a target domain with class means (1, 0) for class 0 and (2, 2) for class 2
    target = (torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 1.0]], dtype=torch.float64),
              torch.tensor([2.0, 0.0, 0.5], dtype=torch.float64))
    cosines = class_cosines((sums, weights), target)
    # only class 0 is in both; source mean (1, 2), target mean (1, 0): 1 / sqrt(5)
    assert list(cosines) == [0]
    assert cosines[0] == pytest.approx(5 ** -0.5, rel=1e-12)  # float64 rounding only
    assert class_cosines((sums, weights), (sums, weights)) == pytest.approx({0: 1.0, 1: 1.0})


def test_pca_directions_and_shared_colours():
    # points along (3, 4, 0) / 5 with a small spread along (0, 0, 1)
    t = torch.linspace(-2, 2, 9)
    points = torch.stack([0.6 * t, 0.8 * t, 0.1 * torch.cos(t * 7)], 1)  # (9, 3)
    maps = [points.T.reshape(1, 3, 3, 3)]
    mean, components = pca_basis(maps, num_components=2)
    assert torch.allclose(mean.float(), points.mean(0), atol=1e-6)
    assert torch.allclose(components[:, 0].float(), torch.tensor([0.6, 0.8, 0.0]), atol=1e-6)
    assert torch.allclose(components[:, 1].float().abs(), torch.tensor([0.0, 0.0, 1.0]),
                          atol=1e-6)
    assert not torch.allclose(components[:, 0].float(), torch.tensor([0.0, 0.0, 1.0]),
                              atol=1e-1)  # negative control: the first axis is not the minor one
    # one colour range for all maps: the same pixel gives the same colour in both
    mean, components = pca_basis(maps + maps, num_components=3)
    first, second = to_rgb(project(maps + [maps[0][:, :, :1]], mean, components))
    assert (first[:, :1] == second).all()


def test_split_steps_follows_the_channel_layout():
    layers = (Layer('resnet', 1, 0, 2), Layer('transformer', 1, 0, 1))
    level = Level(block=1, stride=16, scale=2, layers=layers, num_steps=2)
    # channels: resnet at step 0 (2), resnet at step 1 (2), transformer step 0, step 1
    features = torch.arange(6.0).view(1, 6, 1, 1)
    first, second = split_steps(features, level)
    assert first.flatten().tolist() == [0.0, 1.0, 4.0]
    assert second.flatten().tolist() == [2.0, 3.0, 5.0]


def test_contradicting_arguments_are_refused_before_work(tmp_path):
    with pytest.raises(ShowFeaturesError, match='--stability reads its images'):
        parse_args([str(DEMO), 'x.png', '--stability', 'source', 'cityscapes', '--out', 'f.png'])
    with pytest.raises(ShowFeaturesError, match='expected a .png'):
        parse_args([str(DEMO), 'x.png', '--out', 'f.jpg'])
    with pytest.raises(ShowFeaturesError, match='reference domain and at least one'):
        parse_args([str(DEMO), '--stability', 'source', '--out', 'f.png'])


def test_figures_on_the_tiny_model(workspace, tiny_sd_dir, trained_demo, tmp_path, monkeypatch):
    monkeypatch.chdir(workspace)
    model = [f'model.backbone.overrides.model_id={tiny_sd_dir}', *SHORT_TIMESTEPS]
    gta = workspace / 'data' / 'synthetic' / 'gta'
    images = [gta / 'images' / '00001.png', gta / 'images' / '00002.png']
    labels = [gta / 'labels' / '00001_labelTrainIds.png', gta / 'labels' / '00002_labelTrainIds.png']
    [out] = main([str(DEMO), *map(str, images), '--labels', *map(str, labels), '--checkpoint',
                  str(trained_demo[1]), '--out', str(tmp_path / 'maps.png'), '--cfg-options',
                  *model])
    figure = cv2.imread(str(out))
    # 2 images x (input row + 2 saved steps) rows of 256x128 panels (the GTA image 256x144 ->
    # 256x128); columns: titles + 4 levels (strides 8..64)
    assert figure.shape[1] == 150 + 4 * (256 + 4)
    assert figure.shape[0] > 6 * 128
    [fused] = main([str(DEMO), str(images[0]), '--fused', '--out', str(tmp_path / 'fused.png'),
                    '--cfg-options', *model])
    # image + the four pyramid outputs (strides 4, 8, 16, 32) in one row
    assert cv2.imread(str(fused)).shape[1] == 150 + 5 * (256 + 4)
    with pytest.raises(ShowFeaturesError, match='one label map per image'):
        main([str(DEMO), *map(str, images), '--labels', str(labels[0]), '--out',
              str(tmp_path / 'x.png'), '--cfg-options', *model])


def test_stability_command_as_in_readme(workspace, tiny_sd_dir, tmp_path, monkeypatch):
    # the README command, run from a folder outside the repository, on the tiny model
    out = tmp_path / 'stability.png'
    command = [sys.executable, str(REPO / 'tools' / 'show_features.py'), str(DEMO),
               '--stability', 'source', 'cityscapes', 'acdc:fog', 'acdc:night', 'dark_zurich',
               '--max-images', '1', '--out', str(out), '--cfg-options',
               f'model.backbone.overrides.model_id={tiny_sd_dir}', *SHORT_TIMESTEPS]
    done_env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1'}
    done = subprocess.run(command, cwd=workspace, capture_output=True, text=True, timeout=300,
                          env=done_env)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.with_suffix('.json').read_text())
    assert result['reference'] == 'source' and result['images']['acdc:night'] == 1
    assert result['saved_steps'] == [2, 1] and result['strides'] == [8, 16, 32, 64]
    assert len(result['cells']) == 4 * 2 * 4  # targets x steps x levels
    for cell in result['cells']:
        assert cell['classes'] and -1 <= cell['mean_cosine'] <= 1
        assert cell['mean_cosine'] == pytest.approx(
            sum(cell['classes'].values()) / len(cell['classes']), rel=1e-12)
    rows = list(csv.DictReader(out.with_suffix('.csv').open()))
    assert len(rows) == len(result['cells']) and rows[0]['timestep'] == '8'
    assert cv2.imread(str(out)).shape[0] > 8 * 44
    monkeypatch.chdir(workspace)  # the unknown domain is refused before the model is built
    with pytest.raises(ShowFeaturesError, match="no domain 'nowhere' in domain_datasets"):
        main([str(DEMO), '--stability', 'source', 'nowhere', '--out', str(out)])

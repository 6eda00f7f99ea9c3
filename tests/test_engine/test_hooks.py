"""Prediction figures: image | ground truth / prediction | error map with a legend, atomically."""
import cv2
import numpy as np
import pytest

from mmseg.engine import SegPredictionWriterHook, write_prediction_images
from mmseg.utils import CLASSES, PALETTE, error_map, legend, prediction_figure
from mmseg.utils.visualization import _BAR, ERROR_WRONG, IGNORE_GREY, PANEL_WIDTH


def _scene():
    image = np.full((6, 8, 3), 200, np.uint8)
    label = np.zeros((6, 8), np.int64)
    label[:, 4:] = 10  # sky
    label[0, 0] = 255
    pred = label.copy()
    pred[0, 0] = 0
    pred[5, 7] = 13  # one wrong pixel (car instead of sky)
    return image, pred, label


def test_error_map_colours():
    _, pred, label = _scene()
    errors = error_map(pred, label)
    assert tuple(errors[5, 7]) == ERROR_WRONG and tuple(errors[0, 0]) == IGNORE_GREY
    assert tuple(errors[2, 2]) == (0, 0, 0)


def test_figure_panels_hold_image_truth_prediction_and_errors():
    image, pred, label = _scene()
    figure = prediction_figure(image, pred, label)
    scale = PANEL_WIDTH // 8  # 6x8 pixels shown 64x at a 512-pixel panel width
    panel_h = 6 * scale
    assert figure.shape[1] == 2 * PANEL_WIDTH

    def at(row, col, y, x):  # pixel (y, x) of the label grid in panel (row, col)
        top = row * (_BAR + panel_h) + _BAR + y * scale + scale // 2
        return tuple(figure[top, col * PANEL_WIDTH + x * scale + scale // 2])

    assert at(0, 0, 2, 2) == (200, 200, 200)  # image
    assert at(0, 1, 2, 6) == PALETTE[10] and at(0, 1, 0, 0) == (0, 0, 0)  # truth, ignore
    assert at(1, 0, 5, 7) == PALETTE[13] and at(1, 0, 2, 2) == PALETTE[0]  # prediction
    assert at(1, 1, 5, 7) == ERROR_WRONG and at(1, 1, 0, 0) == IGNORE_GREY  # errors
    # the legend below the panels shows every class colour
    below = figure[2 * (_BAR + panel_h):]
    for colour in PALETTE:
        assert (below == np.array(colour, np.uint8)).all(-1).any(), colour


def test_figure_without_labels_is_image_and_prediction():
    image, pred, _ = _scene()
    figure = prediction_figure(image, pred)
    panel_h = 6 * (PANEL_WIDTH // 8)
    assert figure.shape[1] == 2 * PANEL_WIDTH
    assert figure.shape[0] == _BAR + panel_h + legend(2 * PANEL_WIDTH, CLASSES,
                                                      PALETTE).shape[0]


def test_write_prediction_images_one_figure_and_raw_ids(tmp_path):
    image, pred, label = _scene()
    files = write_prediction_images(tmp_path / 'out', 'img', image, pred,
                                    raw_dir=tmp_path / 'raw', gt=label)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ['out/img.png', 'raw/img.png']
    figure = cv2.imread(str(files[0]))
    assert figure.shape[1] == 2 * PANEL_WIDTH
    raw = cv2.imread(str(files[1]), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint8 and (raw == pred).all()
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['img.png']  # no temp left
    # an image of another size is resized to the prediction's
    files = write_prediction_images(tmp_path / 'out', 'b', np.zeros((3, 4, 3), np.uint8), pred)
    assert cv2.imread(str(files[0])).shape[1] == 2 * PANEL_WIDTH


def test_hook_rejects_unknown_stage():
    with pytest.raises(ValueError, match="stages must be 'val' and/or 'test'"):
        SegPredictionWriterHook(stages=['train'])

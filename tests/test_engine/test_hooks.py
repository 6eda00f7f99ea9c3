"""Prediction images: coloured mask and overlay, written atomically."""
import cv2
import numpy as np

from mmseg.engine import write_prediction_images
from mmseg.utils import PALETTE


def test_write_prediction_images(tmp_path):
    image = np.full((6, 8, 3), 200, np.uint8)
    label = np.zeros((6, 8), np.int64)
    label[:, 4:] = 10  # sky
    label[0, 0] = 255
    files = write_prediction_images(tmp_path / 'out', 'img', image, label, opacity=1.0)
    assert [f.name for f in files] == ['img_pred.png', 'img_overlay.png']
    pred = cv2.cvtColor(cv2.imread(str(files[0])), cv2.COLOR_BGR2RGB)
    assert tuple(pred[1, 5]) == PALETTE[10] and tuple(pred[1, 1]) == PALETTE[0]
    over = cv2.cvtColor(cv2.imread(str(files[1])), cv2.COLOR_BGR2RGB)
    assert tuple(over[1, 5]) == PALETTE[10] and tuple(over[0, 0]) == (200, 200, 200)
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['img_overlay.png',
                                                                    'img_pred.png']
    # an image of another size is resized to the prediction's
    files = write_prediction_images(tmp_path / 'out', 'b', np.zeros((3, 4, 3), np.uint8), label)
    assert cv2.imread(str(files[1])).shape == (6, 8, 3)

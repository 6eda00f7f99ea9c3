"""tools/infer.py: a folder of images -> coloured masks and overlays at the image size."""
import cv2
import numpy as np

from test_tools.workspace import DEMO, SHORT_TIMESTEPS
from tools.infer import main as infer_main


def test_folder_of_images(trained_demo, tiny_sd_dir, tmp_path):
    _, ckpt, _ = trained_demo
    images = tmp_path / 'mine'
    (images / 'sub').mkdir(parents=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(images / 'a.png'), rng.integers(0, 255, (100, 150, 3), dtype=np.uint8))
    cv2.imwrite(str(images / 'sub' / 'b.jpg'), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    written = infer_main([str(DEMO), str(ckpt), str(images), '--out-dir', str(tmp_path / 'out'),
                          '--labels', '--cfg-options', *SHORT_TIMESTEPS,
                          f'model.backbone.overrides.model_id={tiny_sd_dir}'])
    names = sorted(str(p.relative_to(tmp_path / 'out')) for p in written)
    assert names == ['a_overlay.png', 'a_pred.png', 'labels/a.png', 'labels/sub/b.png',
                     'sub/b_overlay.png', 'sub/b_pred.png']
    assert cv2.imread(str(tmp_path / 'out' / 'a_overlay.png')).shape == (100, 150, 3)
    label = cv2.imread(str(tmp_path / 'out' / 'labels' / 'sub' / 'b.png'), cv2.IMREAD_UNCHANGED)
    assert label.shape == (64, 64) and label.max() < 19

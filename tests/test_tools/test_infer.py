"""tools/infer.py: a folder of images -> prediction figures and train-id PNGs."""
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
    assert names == ['a.png', 'labels/a.png', 'labels/sub/b.png', 'sub/b.png']
    # image | prediction, each panel at least 512 pixels wide, and a legend
    assert cv2.imread(str(tmp_path / 'out' / 'a.png')).shape[1] == 2 * 512
    label = cv2.imread(str(tmp_path / 'out' / 'labels' / 'sub' / 'b.png'), cv2.IMREAD_UNCHANGED)
    assert label.shape == (64, 64) and label.max() < 19

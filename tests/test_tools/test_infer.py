"""tools/infer.py: a folder of images -> prediction figures and train-id PNGs."""
import cv2
import numpy as np

from test_tools.workspace import DEMO, SHORT_TIMESTEPS
from tools.infer import main as infer_main


def test_folder_of_images(trained_demo, tiny_sd_dir, tmp_path, capsys):
    _, ckpt, _ = trained_demo
    images = tmp_path / 'mine'
    (images / 'sub').mkdir(parents=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(images / 'a.png'), rng.integers(0, 255, (100, 150, 3), dtype=np.uint8))
    cv2.imwrite(str(images / 'sub' / 'b.jpg'), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    cv2.imwrite(str(images / 'x.jpg'), rng.integers(0, 255, (32, 48, 3), dtype=np.uint8))
    cv2.imwrite(str(images / 'x.png'), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    (images / 'notes.png').write_text('a text file with an image name')
    written = infer_main([str(DEMO), str(ckpt), str(images), '--out-dir', str(tmp_path / 'out'),
                          '--labels', '--cfg-options', *SHORT_TIMESTEPS,
                          f'model.backbone.overrides.model_id={tiny_sd_dir}'])
    names = sorted(str(p.relative_to(tmp_path / 'out')) for p in written)
    assert names == ['a.png', 'labels/a.png', 'labels/sub/b.png', 'labels/x_jpg.png',
                     'labels/x_png.png', 'sub/b.png', 'x_jpg.png', 'x_png.png']
    out = capsys.readouterr()
    assert f'skipped {images / "notes.png"}: Cannot read image' in out.out + out.err
    assert '4 images segmented (1 unreadable file(s) skipped, named above)' in out.out
    # same-stem inputs keep their own predictions: the label sizes are the inputs' sizes
    assert cv2.imread(str(tmp_path / 'out' / 'labels' / 'x_jpg.png'), -1).shape == (32, 48)
    assert cv2.imread(str(tmp_path / 'out' / 'labels' / 'x_png.png'), -1).shape == (40, 40)
    # image | prediction, each panel at least 512 pixels wide, and a legend
    assert cv2.imread(str(tmp_path / 'out' / 'a.png')).shape[1] == 2 * 512
    label = cv2.imread(str(tmp_path / 'out' / 'labels' / 'sub' / 'b.png'), cv2.IMREAD_UNCHANGED)
    assert label.shape == (64, 64) and label.max() < 19

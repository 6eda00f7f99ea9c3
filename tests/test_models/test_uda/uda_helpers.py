"""Tiny DACS models and UDA batches shared by the UDA tests (no test here)."""
from typing import List, Tuple

import torch
from mmengine.structures import PixelData

import tests.test_models.tiny_backbone  # noqa: F401  (registers TestTinyBackbone)
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

CHANNELS = [8, 16, 32, 64]


def segmentor_cfg(ipkl: bool = False) -> dict:
    """EncoderDecoder with the test-only tiny backbone and a small DAFormer head."""
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[127.5] * 3, std=[127.5] * 3,
                               bgr_to_rgb=True, test_cfg=dict(size_divisor=32)),
        backbone=dict(type='TestTinyBackbone', channels=CHANNELS),
        decode_head=dict(type='DAFormerHead', in_channels=CHANNELS, in_index=[0, 1, 2, 3],
                         channels=16, num_classes=19, dropout_ratio=0.1,
                         norm_cfg=dict(type='BN', requires_grad=True),
                         decoder_params=dict(embed_dims=16,
                                             fusion_cfg=dict(dilations=(1, 6, 12, 18), sep=True)),
                         loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(ipkl=dict(enabled=ipkl, consistency_weight=1.0)),
        test_cfg=dict(mode='whole', size_divisor=32, seed=0))


def build_dacs(freeze_stem: bool = True, seed: int = 0, **kwargs):
    """A DACS around the tiny segmentor; the backbone stem frozen stands in for SD."""
    torch.manual_seed(seed)
    cfg = dict(type='DACS', model=segmentor_cfg(kwargs.pop('ipkl', False)), max_iters=10,
               debug_img_interval=1)
    cfg.update(kwargs)
    if freeze_stem:
        # Freeze before DACS builds its teacher: wrap the segmentor config build.
        segmentor = MODELS.build(cfg['model'])
        segmentor.backbone.stem.requires_grad_(False)
        cfg['model'] = segmentor
    return MODELS.build(cfg)


def _sample(label: torch.Tensor, name: str) -> SegDataSample:
    sample = SegDataSample(metainfo=dict(img_path=name, ori_shape=tuple(label.shape[-2:]),
                                         img_shape=tuple(label.shape[-2:])))
    sample.gt_sem_seg = PixelData(data=label)
    return sample


def uda_batch(batch: int = 2, size: int = 32, seed: int = 1) -> dict:
    """A collated UDA batch as the dataloader gives it: uint8 BGR images, int64 labels."""
    gen = torch.Generator().manual_seed(seed)
    data = dict(inputs=[], data_samples=[], target_inputs=[], target_data_samples=[])
    for i in range(batch):
        label = torch.randint(0, 5, (1, size, size), generator=gen)
        label[:, :2] = 255
        data['inputs'].append(torch.randint(0, 256, (3, size, size), generator=gen,
                                            dtype=torch.uint8))
        data['data_samples'].append(_sample(label, f'src{i}.png'))
        data['target_inputs'].append(torch.randint(0, 256, (3, size, size), generator=gen,
                                                   dtype=torch.uint8))
        data['target_data_samples'].append(
            _sample(torch.full((1, size, size), 255, dtype=torch.long), f'tgt{i}.png'))
    return data


def storage_ids(tensors: List[torch.Tensor]) -> List[Tuple[int, int]]:
    """(data_ptr, nbytes) of each tensor's storage, for counting distinct storages."""
    return [(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()) for t in tensors]

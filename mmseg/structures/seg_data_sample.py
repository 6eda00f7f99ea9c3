"""The data sample that travels with every image (mmseg 1.x convention).

Fields (all optional, each a :class:`mmengine.structures.PixelData`):

- ``gt_sem_seg``: ground-truth train ids, ``data`` of shape (1, H, W), int64,
  255 = ignore.
- ``pred_sem_seg``: predicted train ids, (1, H, W), int64, at the original size.
- ``seg_logits``: class scores, (C, H, W), float, at the original size.

Meta information (``metainfo``): ``img_path``, ``seg_map_path``,
``ori_shape`` (H, W of the file), ``img_shape`` (H, W after the pipeline),
``pad_shape`` (H, W after batch padding), ``padding_size`` (left, right, top,
bottom padding added by the data preprocessor), ``scale_factor``, ``flip``,
``flip_direction``.
"""
from mmengine.structures import BaseDataElement, PixelData


class SegDataSample(BaseDataElement):
    """Annotations and predictions of one image."""

    @property
    def gt_sem_seg(self) -> PixelData:
        return self._gt_sem_seg

    @gt_sem_seg.setter
    def gt_sem_seg(self, value: PixelData) -> None:
        self.set_field(value, '_gt_sem_seg', dtype=PixelData)

    @gt_sem_seg.deleter
    def gt_sem_seg(self) -> None:
        del self._gt_sem_seg

    @property
    def pred_sem_seg(self) -> PixelData:
        return self._pred_sem_seg

    @pred_sem_seg.setter
    def pred_sem_seg(self, value: PixelData) -> None:
        self.set_field(value, '_pred_sem_seg', dtype=PixelData)

    @pred_sem_seg.deleter
    def pred_sem_seg(self) -> None:
        del self._pred_sem_seg

    @property
    def seg_logits(self) -> PixelData:
        return self._seg_logits

    @seg_logits.setter
    def seg_logits(self, value: PixelData) -> None:
        self.set_field(value, '_seg_logits', dtype=PixelData)

    @seg_logits.deleter
    def seg_logits(self) -> None:
        del self._seg_logits

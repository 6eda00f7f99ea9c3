"""The host-reads seam: plain reads outside ``supply``, supplied values inside, names checked."""
import pytest
import torch

from mmseg.models.backbones.diff import host_reads
from mmseg.models.losses.accuracy import accuracy
from mmseg.models.utils.dacs_transforms import get_class_masks


def test_plain_reads_outside_supply():
    labels = torch.tensor([[3, 1], [255, 1]])
    assert host_reads.distinct_values('label_classes', labels) == [1, 3, 255]
    assert host_reads.item('valid_pixels', torch.tensor(7)) == 7


def test_supplied_reads_nest_and_end_with_the_block():
    labels = torch.tensor([[3, 1]])
    with host_reads.supply(label_classes=lambda t: [5, 2]):
        assert host_reads.distinct_values('label_classes', labels) == [2, 5]
        with host_reads.supply(valid_pixels=lambda t: t.numel() * 10):
            assert host_reads.item('valid_pixels', labels) == 20
            assert host_reads.distinct_values('label_classes', labels) == [2, 5]
        assert host_reads.item('valid_pixels', torch.tensor(4)) == 4
    assert host_reads.distinct_values('label_classes', labels) == [1, 3]


def test_unknown_names_are_errors():
    with pytest.raises(ValueError, match='unknown reads'):
        with host_reads.supply(label_clases=lambda t: []):
            pass
    with pytest.raises(ValueError, match='unknown read'):
        host_reads.item('nothing', torch.tensor(1))


def test_call_sites_use_the_supplied_values():
    """ClassMix candidates and the accuracy's pixel count come from the seam."""
    labels = torch.tensor([[[0, 1], [2, 2]]])
    with host_reads.supply(label_classes=lambda t: [2]):  # only class 2 can be drawn
        (mask,) = get_class_masks(labels, torch.Generator().manual_seed(0))
    assert mask.tolist() == [[[0.0, 0.0], [1.0, 1.0]]]
    scores = torch.zeros(1, 3, 2, 2)
    scores[:, 0] = 1  # predicts class 0 everywhere: 1 of 4 pixels right
    assert accuracy(scores, labels).item() == 25.0
    with host_reads.supply(valid_pixels=lambda t: 2):
        assert accuracy(scores, labels).item() == 50.0

"""tools/plan_gpu.py's FLOP formulas against hand counts, and its memory accounting."""
import torch
import torch.nn.functional as F

from tools import plan_gpu


def _count(function) -> int:
    with plan_gpu.flop_counter() as counter:
        function()
    return counter.get_total_flops()


def test_convolution_forward_and_backward_hand_counts():
    x = torch.randn(2, 6, 10, 12, requires_grad=True)
    weight = torch.randn(4, 6, 3, 3, requires_grad=True)
    forward = 2 * 2 * (10 * 12) * (4 * 6 * 3 * 3)  # 2 x images x positions x weight elements
    assert _count(lambda: F.conv2d(x, weight, padding=1)) == forward
    # Backward: input gradient and weight gradient, one forward each.
    assert _count(lambda: F.conv2d(x, weight, padding=1).sum().backward()) == 3 * forward


def test_grouped_convolution_hand_counts():
    """Depthwise (groups = channels): torch's own backward formula over-counts this."""
    x = torch.randn(1, 8, 16, 16, requires_grad=True)
    weight = torch.randn(8, 1, 3, 3, requires_grad=True)
    forward = 2 * (16 * 16) * (8 * 1 * 3 * 3)
    assert _count(lambda: F.conv2d(x, weight, padding=1, groups=8)) == forward
    total = _count(lambda: F.conv2d(x, weight, padding=1, groups=8).sum().backward())
    assert total == 3 * forward
    # Negative control: torch's formula alone gives a different (larger) count.
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as plain:
        F.conv2d(x, weight, padding=1, groups=8).sum().backward()
    assert plain.get_total_flops() > total


def test_cpu_attention_hand_count():
    """The CPU flash-attention kernel: torch counts it as 0, the fix as two matmuls."""
    q, k, v = (torch.randn(2, 4, 64, 32) for _ in range(3))  # shapes the fused kernel takes
    hand = 2 * (2 * 2 * 4 * 64 * 64 * 32)  # Q K^T, then softmax(.) V
    assert _count(lambda: F.scaled_dot_product_attention(q, k, v)) == hand
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as plain:
        F.scaled_dot_product_attention(q, k, v)
    assert plain.get_total_flops() == 0  # what the fix repairs


def test_live_bytes_peak_of_a_known_sequence():
    """Views share their storage; a storage is freed with its last tensor."""
    with plan_gpu.LiveBytes() as live:
        a = torch.ones(1000)  # 4000 bytes
        view = a[:10]
        b = a * 2  # 8000 live
        del a, view
        c = b + 1  # a freed: 8000 live again
        del b, c
    assert live.peak == 8000
    assert live.live == 0


def test_parameter_bytes_and_margin():
    model = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.Linear(10, 5))
    model[0].requires_grad_(False)
    model[0].half()
    result = plan_gpu.parameter_bytes(model)
    assert result['frozen_weights'] * plan_gpu.GB == 110 * 2
    assert result['trained_weights'] * plan_gpu.GB == 55 * 4
    assert result['optimiser_state'] * plan_gpu.GB == 2 * 55 * 4
    assert plan_gpu.with_margin(10.0) == 10.0 * (1 + plan_gpu.MARGIN_FRACTION) + plan_gpu.MARGIN_GB

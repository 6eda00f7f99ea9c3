"""init_model's init_weights prints no per-parameter report outside a Runner."""
import torch.nn as nn
from mmengine.model import BaseModule

from mmseg.apis.inference import quiet_init_weights


class _Net(BaseModule):
    def __init__(self):
        super().__init__(init_cfg=dict(type='Constant', layer='Linear', val=0.5))
        self.linear = nn.Linear(3, 3)
        self.frozen = nn.Linear(3, 3)  # also a Linear: both are initialised
        self.norm = nn.LayerNorm(3)  # untouched: mmengine reports it as 'the same'


def test_quiet_init_weights_initialises_without_the_report(capsys):
    net = _Net()
    quiet_init_weights(net)
    assert float(net.linear.weight.detach().mean()) == 0.5
    captured = capsys.readouterr()
    assert 'The value is the same' not in captured.out + captured.err

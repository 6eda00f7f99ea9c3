"""Type aliases used across the mmseg side (mmseg 1.x names)."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.config import ConfigDict

from mmseg.structures import SegDataSample

ConfigType = Union[ConfigDict, dict]
OptConfigType = Optional[ConfigType]
MultiConfig = Union[ConfigType, Sequence[ConfigType]]
OptMultiConfig = Optional[MultiConfig]
SampleList = List[SegDataSample]
OptSampleList = Optional[SampleList]
TensorDict = Dict[str, 'torch.Tensor']  # noqa: F821
TensorTuple = Tuple['torch.Tensor', ...]  # noqa: F821

from .aspp import ASPPFusion
from .daformer_head import DAFormerHead
from .decode_head import BaseDecodeHead

__all__ = ['ASPPFusion', 'BaseDecodeHead', 'DAFormerHead']

from .accuracy import accuracy
from .cross_entropy_loss import CrossEntropyLoss, cross_entropy

__all__ = ['CrossEntropyLoss', 'accuracy', 'cross_entropy']

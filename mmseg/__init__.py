"""DIFF: diffusion features for domain-generalised semantic segmentation.

An mmengine-based implementation in the mmsegmentation 1.x style. Importing
``mmseg`` registers every dataset, transform, model, metric and loop.
"""
__version__ = '1.0.0'

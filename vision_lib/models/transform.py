"""The base of every transformer that turns a list of images into feature rows (scikit-learn style).

It sits in the models layer, below the stages, so that descriptors, MobileNetV2 features and the
classic recipes share it without importing one another.
"""
from __future__ import annotations

from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin

__all__ = ["ImageTransformer"]


class ImageTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base for stateless transformers whose input is a list of images (crops differ in size).

    Each subclass says how many values it makes (``_n_features_out``), which gives
    ``get_feature_names_out`` (``waveletfeatures0``, ...), as ``set_output`` needs (pandas or polars
    output, when installed).
    """

    def fit(self, X, y=None):
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        return tags

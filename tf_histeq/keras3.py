"""The tf_histeq layers for Keras 3, whatever `tf.keras` is.

`tf_histeq.layers` holds these unless `TF_USE_LEGACY_KERAS=1` makes
`tf.keras` tf_keras (Keras 2), whose layers are in `tf_histeq.keras2`.
"""

from __future__ import annotations

from tf_histeq.layers import _kerases

__all__ = list(_kerases.LAYERS)

globals().update(_kerases.keras3_layers())

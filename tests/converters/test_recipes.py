"""converters.recipes: quantization recipes, and the quantizer on weights of every size."""

import numpy as np
import pytest
from ai_edge_quantizer import qtyping
from ai_edge_quantizer.algorithms.uniform_quantize import uniform_quantize_tensor as uqt

from converters import recipes


def _per_channel(weight):
    """Symmetric int8 per-output-channel parameters, as the dynamic-range recipe makes for a convolution."""
    scale = (np.abs(weight).reshape(len(weight), -1).max(axis=1) / 127).astype(np.float32)
    return qtyping.UniformQuantParams(num_bits=8, quantized_dimension=0, scale=scale,
                                      zero_point=np.zeros(len(weight), np.int32), symmetric=True)


@pytest.fixture(scope="module")
def large_conv_weight():
    # Florence-2-large's last patch embedding, OHWI as in the graph: 2048 x 3 x 3 x 1024, 75 MB.
    return np.random.default_rng(0).standard_normal((2048, 3, 3, 1024), dtype=np.float32)


def test_the_quantizer_alone_fails_on_a_large_4d_weight(large_conv_weight):
    """Why recipes slices such weights (drop the slicing once this stops raising)."""
    assert large_conv_weight.nbytes > recipes.QUANTIZER_CHUNK_BYTES
    with pytest.raises(ValueError, match="more dimensions than allowed"):
        uqt.uniform_quantize(large_conv_weight, _per_channel(large_conv_weight))


def test_sliced_quantization_gives_the_values_of_the_quantizers_2d_path(large_conv_weight):
    params = _per_channel(large_conv_weight)
    with recipes._large_weights_by_slices():
        sliced = uqt.uniform_quantize(large_conv_weight, params)
    # The same weight as a matrix (one row per output channel) takes the quantizer's working path.
    rows = large_conv_weight.reshape(len(large_conv_weight), -1)
    matrix = uqt.uniform_quantize(rows, _per_channel(rows))
    assert sliced.dtype == np.int8 and sliced.shape == large_conv_weight.shape
    np.testing.assert_array_equal(sliced.reshape(rows.shape), matrix)
    assert uqt.uniform_quantize is not None and "by_slices" not in uqt.uniform_quantize.__name__  # restored


def test_small_and_2d_weights_take_the_quantizers_own_path(large_conv_weight):
    small = large_conv_weight[:64]
    with recipes._large_weights_by_slices():
        ours = uqt.uniform_quantize(small, _per_channel(small))
    np.testing.assert_array_equal(ours, uqt.uniform_quantize(small, _per_channel(small)))

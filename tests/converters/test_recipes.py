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


def _block_scales(weight, granularity=qtyping.QuantGranularity.BLOCKWISE_32):
    """Symmetric int4 scales per block of 32 along a row, as the quantizer computes them."""
    blocks = weight.reshape(len(weight), -1, 32)
    _, scale = uqt.tensor_zp_scale_from_min_max(blocks.min(-1), blocks.max(-1), 4, True, granularity)
    return scale


def _zero_row_weight():
    # A tied lm_head / embedding: the padding token's row is all zeros.
    weight = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    weight[1] = 0
    return weight


def test_the_quantizer_alone_gives_an_all_zero_block_scale_zero():
    """Why recipes raises block scales (XNNPACK refuses to load a zero scale); drop it once this fails."""
    assert (_block_scales(_zero_row_weight())[1] == 0).all()


def test_block_scales_are_raised_to_the_smallest_float16_and_only_where_zero():
    weight = _zero_row_weight()
    plain = _block_scales(weight)
    with recipes._no_zero_block_scales():
        scale = _block_scales(weight)
    assert (scale[1] == np.finfo(np.float16).tiny).all()
    np.testing.assert_array_equal(np.delete(scale, 1, axis=0), np.delete(plain, 1, axis=0))
    assert uqt.tensor_zp_scale_from_min_max.__name__ == "tensor_zp_scale_from_min_max"  # restored


def test_channelwise_scales_are_left_alone():
    weight = _zero_row_weight() * 1e-6  # every channel's scale far under float16's smallest normal
    with recipes._no_zero_block_scales():
        scale = _block_scales(weight, qtyping.QuantGranularity.CHANNELWISE)
    assert 0 < scale.max() < np.finfo(np.float16).tiny

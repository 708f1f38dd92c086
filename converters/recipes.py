"""Quantization recipes, by name, for every graph of a bundle.

A recipe maps each graph role to its parts, each an ai-edge-quantizer recipe and the op
types it applies to (or None: keep fp32). The fp32 graphs are converted once; every quantized
bundle is derived from them, so recipes can be compared on exactly the same float graphs.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from edge.manifest import DECODER, ENCODER, VISION

ALL_OPS = ("*",)
# ai-edge-quantizer 0.10 quantizes a weight over 32 MiB in 2-D chunks and fails there for a 4-D
# (convolution) weight: its per-channel scales, already of the weight's rank, do not broadcast to
# the chunks ("input operand has more dimensions than allowed by the axis remapping").
# Florence-2-large's last patch embedding (2048 x 3 x 3 x 1024, 75 MB) is one; base has none.
# Splitting that convolution in the export does not help: the converter fuses the parts back.
QUANTIZER_CHUNK_BYTES = 32 * 1024 * 1024

INT8 = "dynamic_wi8_afp32"
INT4 = "dynamic_wi4b32_afp32"
STATIC_INT8 = "static_wi8_ai8"
# Depthwise convolutions stay fp32: XNNPACK has no dynamic-int8 depthwise kernel, and
# int8 ones cost base's vision graph 290 of 826 ms per image for 0.4 MB of weights.
VISION_INT8 = ((INT8, ("FULLY_CONNECTED", "CONV_2D")),)
# Static int8 (activations' ranges calibrated on pictures at conversion): int8 flows from each
# fully-connected layer or convolution through the reshapes, transposes and slices after it, with no
# quantization at run time. Normalisation, GELU, softmax and the attention matmuls stay float:
# XNNPACK has no int8 batch matmul or softmax (with them int8, base's vision graph ran 3.2x slower
# on LiteRT's own kernels), and everything int8 gave features 19x off.
VISION_STATIC = ((STATIC_INT8, ("FULLY_CONNECTED", "CONV_2D", "RESHAPE", "TRANSPOSE", "SLICE", "PAD",
                                "CONCATENATION")),)

# Dynamic-range int8 (int8 channelwise weights, activations quantized at run time) is
# the recipe that pays on XNNPACK: weight-only int8 is dequantized to fp32 at load,
# full-integer int8 loses accuracy badly, per-tensor int8 on convolutions gives NaN.
# int4 is in blocks of 32 weights with a float16 scale each (XNNPACK's qd8-f32-qb4w kernels):
# "int4" where every decoder step reads every weight (the decoder, and the text encoder for its
# memory); "int4-vision" also the vision graph's fully-connected layers, the smallest bundle, for
# low-memory boards: its vision graph runs slower (compute-bound, int4 unpacked per block) and
# XNNPACK has no int4 convolution, so those stay int8.
RECIPES = {
    "fp32": {VISION: None, ENCODER: None, DECODER: None},
    "int8": {VISION: VISION_INT8, ENCODER: ((INT8, ALL_OPS),), DECODER: ((INT8, ALL_OPS),)},
    "int8-weight-only": {role: (("weight_only_wi8_afp32", ALL_OPS),) for role in (VISION, ENCODER, DECODER)},
    "int4": {VISION: VISION_INT8, ENCODER: ((INT4, ALL_OPS),), DECODER: ((INT4, ALL_OPS),)},
    "int8-static": {VISION: VISION_STATIC, ENCODER: ((INT8, ALL_OPS),), DECODER: ((INT8, ALL_OPS),)},
    "int4-vision": {VISION: ((INT8, ("CONV_2D",)), (INT4, ("FULLY_CONNECTED",))), ENCODER: ((INT4, ALL_OPS),),
                    DECODER: ((INT4, ALL_OPS),)},
}


def _name(parts) -> str:
    if parts is None:
        return "fp32"
    return "; ".join(name if ops == ALL_OPS else f"{name} on {', '.join(ops)}" for name, ops in parts)


def describe(name: str) -> dict:
    """The manifest's record of a recipe: its name and what each graph got."""
    return {"name": name, "graphs": {role: _name(r) for role, r in RECIPES[name].items()}}


def needs_calibration(parts) -> bool:
    return parts is not None and any(name == STATIC_INT8 for name, _ in parts)


def quantize_file(float_path: str, out_path: str, parts, calibration: dict | None = None) -> None:
    """Write `float_path` quantized by `parts` ((ai-edge-quantizer recipe name, op types), ...) to `out_path`;
    a static recipe's activation ranges come from `calibration` (signature -> [{input name: array}, ...])."""
    from ai_edge_quantizer import quantizer
    from ai_edge_quantizer import recipe as recipes
    from ai_edge_quantizer.calibrator import CalibrationMode

    entries = []
    for name, ops in parts:
        (base,) = getattr(recipes, name)()
        entries += [dict(base, operation=op) for op in ops]
    with _large_weights_by_slices(), _no_zero_block_scales():
        qt = quantizer.Quantizer(float_path)
        qt.load_quantization_recipe(entries)
        # The profiler-based mode keeps each tensor's range, not every tensor: a base vision graph
        # at 768 px would otherwise hold over 20 GB of activations per picture.
        ranges = qt.calibrate(calibration, mode=CalibrationMode.CALIBRATION_PROFILER_BASED) if calibration else None
        qt.quantize(ranges).export_model(out_path, overwrite=True)


@contextlib.contextmanager
def _patched(module, name: str, replacement):
    original = getattr(module, name)
    setattr(module, name, replacement(original))
    try:
        yield
    finally:
        setattr(module, name, original)


# The smallest normal float16: a block scale below it is stored as zero (or subnormal) in the file.
_MIN_BLOCK_SCALE = float(np.finfo(np.float16).tiny)


def _no_zero_block_scales():
    """Block scales raised to the smallest normal float16. The quantizer floors a scale at 1e-9 and
    then stores a block's scale as float16, where that is 0: every all-zero block of 32 weights (the
    padding token's embedding row, tied to the lm_head) gets scale 0, which XNNPACK refuses to load.
    Such a block quantizes to zeros whatever its scale; a nonzero block's scale changes only if its
    largest weight is under 4e-4, whose values then round to within 3e-5. Channelwise (float32)
    scales are left alone."""
    from ai_edge_quantizer.algorithms.uniform_quantize import uniform_quantize_tensor as uqt

    def raise_floor(original):
        def scales(min_value, max_value, num_bits, symmetric, granularity, *args, **kwargs):
            zero_point, scale = original(min_value, max_value, num_bits, symmetric, granularity, *args, **kwargs)
            return zero_point, (np.maximum(scale, _MIN_BLOCK_SCALE) if uqt.is_blockwise(granularity) else scale)

        return scales

    return _patched(uqt, "tensor_zp_scale_from_min_max", raise_floor)


def _large_weights_by_slices():
    """While quantizing, a weight of rank > 2 over QUANTIZER_CHUNK_BYTES is quantized in slices of its
    first axis, each through the quantizer's own (unchunked) path: the same arithmetic on every
    element, so the same int8 values it gives a smaller weight."""
    from ai_edge_quantizer.algorithms.uniform_quantize import uniform_quantize_tensor as uqt

    def slicing(original):
        def by_slices(tensor_data, params, is_blockwise_quant=False):
            if tensor_data.ndim <= 2 or tensor_data.nbytes <= QUANTIZER_CHUNK_BYTES or is_blockwise_quant:
                return original(tensor_data, params, is_blockwise_quant)
            params = uqt.fix_quantization_params_rank(tensor_data, params)
            rows = max(1, QUANTIZER_CHUNK_BYTES // tensor_data[0].nbytes)
            per_row = np.shape(params.scale)[0] == len(tensor_data) > 1  # scales along the first axis

            def part(start):
                rows_of = (lambda a: a[start:start + rows]) if per_row else (lambda a: a)
                return original(tensor_data[start:start + rows], dataclasses.replace(
                    params, scale=rows_of(params.scale), zero_point=rows_of(params.zero_point)))

            return np.concatenate([part(start) for start in range(0, len(tensor_data), rows)])

        return by_slices

    return _patched(uqt, "uniform_quantize", slicing)

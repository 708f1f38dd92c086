"""Quantization recipes, by name, for every graph of a bundle.

A recipe maps each graph role to an ai-edge-quantizer recipe and the op types it
applies to (or None: keep fp32). The fp32 graphs are converted once; every quantized
bundle is derived from them, so recipes can be compared on exactly the same float graphs.
"""

from __future__ import annotations

from edge.manifest import DECODER, ENCODER, VISION
from edge.quiet import quiet

ALL_OPS = ("*",)
# Depthwise convolutions stay fp32: XNNPACK has no dynamic-int8 depthwise kernel, and
# int8 ones cost base's vision graph 290 of 826 ms per image for 0.4 MB of weights.
VISION_INT8_OPS = ("FULLY_CONNECTED", "CONV_2D")

# Dynamic-range int8 (int8 channelwise weights, activations quantized at run time) is
# the recipe that pays on XNNPACK: weight-only int8 is dequantized to fp32 at load,
# full-integer int8 loses accuracy badly, per-tensor int8 on convolutions gives NaN.
RECIPES = {
    "fp32": {VISION: None, ENCODER: None, DECODER: None},
    "int8": {VISION: ("dynamic_wi8_afp32", VISION_INT8_OPS), ENCODER: ("dynamic_wi8_afp32", ALL_OPS),
             DECODER: ("dynamic_wi8_afp32", ALL_OPS)},
    "int8-weight-only": {role: ("weight_only_wi8_afp32", ALL_OPS) for role in (VISION, ENCODER, DECODER)},
}


def _name(recipe) -> str:
    if recipe is None:
        return "fp32"
    name, ops = recipe
    return name if ops == ALL_OPS else f"{name} on {', '.join(ops)}"


def describe(name: str) -> dict:
    """The manifest's record of a recipe: its name and what each graph got."""
    return {"name": name, "graphs": {role: _name(r) for role, r in RECIPES[name].items()}}


def quantize_file(float_path: str, out_path: str, recipe: tuple[str, tuple[str, ...]]) -> None:
    """Write `float_path` quantized by `recipe` (an ai-edge-quantizer recipe name and op types) to `out_path`."""
    from ai_edge_quantizer import quantizer
    from ai_edge_quantizer import recipe as recipes

    name, ops = recipe
    (base,) = getattr(recipes, name)()
    with quiet():
        qt = quantizer.Quantizer(float_path)
        qt.load_quantization_recipe([dict(base, operation=op) for op in ops])
        qt.quantize().export_model(out_path, overwrite=True)

"""Quantization recipes, by name, for every graph of a bundle.

A recipe maps each graph role to an ai-edge-quantizer recipe (or None: keep fp32).
The fp32 graphs are converted once; every quantized bundle is derived from them,
so recipes can be compared on exactly the same float graphs.
"""

from __future__ import annotations

from edge.manifest import DECODER, ENCODER, VISION
from edge.quiet import quiet

# Dynamic-range int8 (int8 channelwise weights, activations quantized at run time) is
# the recipe that pays on XNNPACK: weight-only int8 is dequantized to fp32 at load,
# full-integer int8 loses accuracy badly, per-tensor int8 on convolutions gives NaN.
RECIPES = {
    "fp32": {VISION: None, ENCODER: None, DECODER: None},
    "int8": {VISION: "dynamic_wi8_afp32", ENCODER: "dynamic_wi8_afp32", DECODER: "dynamic_wi8_afp32"},
    "int8-weight-only": {VISION: "weight_only_wi8_afp32", ENCODER: "weight_only_wi8_afp32",
                         DECODER: "weight_only_wi8_afp32"},
}


def describe(name: str) -> dict:
    """The manifest's record of a recipe: its name and what each graph got."""
    return {"name": name, "graphs": {role: (r or "fp32") for role, r in RECIPES[name].items()}}


def quantize_file(float_path: str, out_path: str, recipe_name: str | None) -> None:
    """Write `float_path` quantized by the named ai-edge-quantizer recipe to `out_path`."""
    from ai_edge_quantizer import quantizer, recipe

    with quiet():
        qt = quantizer.Quantizer(float_path)
        qt.load_quantization_recipe(getattr(recipe, recipe_name)())
        qt.quantize().export_model(out_path, overwrite=True)

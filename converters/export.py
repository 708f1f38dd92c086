"""Convert the export wrappers to LiteRT flatbuffers, one file per graph."""

from __future__ import annotations

from pathlib import Path

import torch

from converters import graphs
from edge.manifest import DECODER, ENCODER, VISION, decode_signature_name
from edge.quiet import quiet


def convert_graphs(model, dims: graphs.Dims, buckets: list[tuple[int, int]], out_dir: Path,
                   progress) -> tuple[dict, dict]:
    """Write vision/encoder/decoder fp32 .tflite files into out_dir.

    Returns role -> path and role -> signature -> {"inputs"/"outputs": name -> shape},
    the tensors' real shapes (the files hold them flat).
    """
    import litert_torch

    plans = {
        VISION: [(VISION, graphs.VisionGraph(model), graphs.vision_inputs(dims))],
        ENCODER: [(ENCODER, graphs.EncoderGraph(model, dims), graphs.encoder_inputs(dims))],
        DECODER: [
            (decode_signature_name(b, s), graphs.DecoderStepGraph(model, dims, s), graphs.decoder_inputs(dims, b, s))
            for b, s in buckets
        ],
    }
    paths, shapes = {}, {}
    for role, signatures in plans.items():
        with progress(f"convert {role} graph ({len(signatures)} signature{'s' * (len(signatures) > 1)})"):
            converter, shapes[role] = None, {}
            for name, module, sample in signatures:
                flat = graphs.FlatIO(module.eval(), sample).eval()
                shapes[role][name] = {"inputs": flat.input_shapes, "outputs": flat.output_shapes}
                converter = (litert_torch if converter is None else converter).signature(
                    name, flat, sample_kwargs=flat.flat_sample
                )
            with torch.no_grad(), quiet():
                edge_model = converter.convert()
                path = out_dir / f"{role}.fp32.tflite"
                edge_model.export(str(path))
        paths[role] = path
    return paths, shapes

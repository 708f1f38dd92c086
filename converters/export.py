"""Convert the export wrappers to LiteRT flatbuffers, one file per graph."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from converters import graphs
from edge.manifest import DECODER, ENCODER, VISION, decode_signature_name, encode_signature_name


def convert_graphs(model, dims: graphs.Dims, buckets: list[tuple[int, int]], prompt_lens: list[int],
                   out_dir: Path, progress) -> tuple[dict, dict]:
    """Write vision/encoder/decoder fp32 .tflite files into out_dir.

    The text encoder has a signature per prompt length, the decoder one per (batch,
    cache, prompt length): a short prompt's encoder and every decoder step then run
    over 577 + 32 positions, not 577 + 128.

    Returns role -> path and role -> signature -> {"inputs"/"outputs": name -> shape},
    the tensors' real shapes (the files hold them flat).
    """
    import litert_torch

    per_prompt = {p: replace(dims, prompt_len=p) for p in prompt_lens}
    plans = {
        VISION: [(VISION, graphs.VisionGraph(model), graphs.vision_inputs(dims))],
        ENCODER: [(encode_signature_name(p), graphs.EncoderGraph(model, d), graphs.encoder_inputs(d))
                  for p, d in per_prompt.items()],
        DECODER: [
            (decode_signature_name(b, s, p), graphs.DecoderStepGraph(model, d, s), graphs.decoder_inputs(d, b, s))
            for p, d in per_prompt.items() for b, s in buckets
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
            with torch.no_grad():
                edge_model = converter.convert()
                path = out_dir / f"{role}.fp32.tflite"
                edge_model.export(str(path))
        paths[role] = path
    return paths, shapes

"""benchmarks.peers: what the bandwidth floor counts, on the tiny model's int8 and int4 bundles."""

import numpy as np

from benchmarks import peers
from edge.manifest import decode_signature_name, load_manifest


def _signature(bundle):
    manifest = load_manifest(bundle)
    return decode_signature_name(1, manifest.decoder_buckets()[0][1], manifest.prompt_lens[0])


def test_int8_counts_a_byte_a_weight_and_the_tied_embedding_once(int8_bundle, tiny_source):
    bundle = int8_bundle[0]
    model = tiny_source.model
    layers = model.model.language_model.decoder.layers
    # Cross-attention's K and V projections run in the text encoder, once per prompt.
    in_encoder = ("encoder_attn.k_proj", "encoder_attn.v_proj")
    weights = sum(p.numel() for name, p in layers.named_parameters()
                  if p.ndim == 2 and not any(part in name for part in in_encoder))
    weights += model.lm_head.weight.numel()
    assert peers.decoder_weight_bytes(bundle / "decoder.tflite", _signature(bundle)) == weights


def test_int4_reads_about_nine_sixteenths_of_int8(int8_bundle, int4_bundle):
    int8 = peers.decoder_weight_bytes(int8_bundle[0] / "decoder.tflite", _signature(int8_bundle[0]))
    int4 = peers.decoder_weight_bytes(int4_bundle[0] / "decoder.tflite", _signature(int4_bundle[0]))
    # Half a byte a weight and a float16 scale per 32: 0.5625 of int8's byte.
    assert np.isclose(int4 / int8, 0.5625, atol=0.03)

"""Parity of a bundle with its PyTorch checkpoint: per-graph error and end-to-end tokens.

Runs at the end of every conversion and as `florence-edge verify BUNDLE --against SRC`.
The device runtime (`edge`) is what is measured, so a passing report means the
files on the device reproduce `generate()`, not just that the graphs converted.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib

import numpy as np
import torch
from PIL import Image, ImageDraw

from converters import graphs
from converters.source import Source, load_source
from edge import manifest as mf
from edge import probe
from edge.errors import FlorenceEdgeError
from edge.kv_cache import cross_bias
from edge.model import Florence2
from edge.preprocess import pixel_values
from edge.runtime import RUNTIMES, open_graph

# (task, text): one of each kind of prompt (plain, detection, OCR with regions, text input).
CASES = (
    ("<CAPTION>", None),
    ("<OD>", None),
    ("<OCR_WITH_REGION>", None),
    ("<CAPTION_TO_PHRASE_GROUNDING>", "a red circle and a blue square"),
)
DEFAULT_TOKENS = 24
# Pass mark for quantized bundles: mean greedy-token agreement with generate().
# Random weights give flat logits, where int8 noise flips a near-tie and every later
# token follows the flip: measured 1.0 on the tiny test model and 0.67 on a
# base-sized random model. A broken graph (zeros, NaN, a wrong cache) agrees only on
# the forced BOS/EOS, under 0.1. Accuracy of a trained model is `eval`'s job.
INT8_MIN_AGREEMENT = 0.3


def sample_images() -> list[Image.Image]:
    """Two deterministic scenes with different sizes and aspect ratios."""
    a = Image.new("RGB", (320, 240), (235, 230, 220))
    d = ImageDraw.Draw(a)
    d.ellipse((30, 40, 130, 140), fill=(200, 30, 30))
    d.rectangle((170, 90, 290, 210), fill=(30, 60, 200))
    d.text((40, 190), "HELLO", fill=(0, 0, 0))
    grad = np.linspace(0, 255, 500, dtype=np.float32)
    b_arr = np.stack(np.broadcast_arrays(grad[None, :], grad[::-1, None] * 0.5, 128.0), axis=-1)
    b = Image.fromarray(b_arr.astype(np.uint8)[:, :, :3])
    ImageDraw.Draw(b).polygon([(100, 400), (250, 80), (420, 380)], fill=(240, 200, 20))
    return [a, b]


def _errors(ours: np.ndarray, ref: np.ndarray) -> dict:
    ours, ref = ours.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
    diff = ours - ref
    denom = np.linalg.norm(ours) * np.linalg.norm(ref)
    return {
        "max_abs": float(np.abs(diff).max()),
        "rel_l2": float(np.linalg.norm(diff) / max(np.linalg.norm(ref), 1e-12)),
        "cosine": float(ours @ ref / denom) if denom else 0.0,
    }


def _concat(outputs: dict, names) -> np.ndarray:
    return np.concatenate([np.array(outputs[n]).ravel() for n in names])


def graph_errors(source: Source, bundle: mf.Manifest, image: Image.Image) -> dict:
    """Each graph run on the same real inputs in PyTorch and LiteRT."""
    model = source.model
    dims = graphs.Dims.from_manifest(bundle.model, bundle.image)
    im = bundle.image
    pixels = pixel_values(image, (im["height"], im["width"]), im["mean"], im["std"], im["resample"],
                          im["rescale_factor"])
    tok = source.processor.tokenizer
    ids = tok.encode("<s>" + bundle.tasks["<OD>"]["prompt"] + "</s>", add_special_tokens=False)
    prompt = np.full((1, dims.prompt_len), bundle.tokens["pad"], np.int32)
    prompt[0, : len(ids)] = ids
    mask = (np.arange(dims.prompt_len) < len(ids)).astype(np.int32)[None]

    def litert(role, key):
        graph = open_graph(bundle.graph_path(role), 2, bundle.quantization)
        sig = graph.signature(key, bundle.signature(role, key))
        return lambda **inputs: {name: np.array(view) for name, view in sig(**inputs).items()}

    report = {}
    with torch.no_grad():
        ref = graphs.VisionGraph(model)(torch.from_numpy(pixels))["image_features"].numpy()
        report[mf.VISION] = _errors(litert(mf.VISION, mf.VISION)(pixel_values=pixels)["image_features"], ref)
        enc_ref = graphs.EncoderGraph(model, dims)(torch.from_numpy(ref), torch.from_numpy(prompt),
                                                   torch.from_numpy(mask))
        enc_ours = litert(mf.ENCODER, mf.encode_signature_name(dims.prompt_len))(image_features=ref, prompt_ids=prompt,
                                                                                 prompt_mask=mask)
        names = sorted(enc_ref)
        report[mf.ENCODER] = _errors(_concat(enc_ours, names), _concat(enc_ref, names))

        batch, cache = bundle.decoder_buckets()[0]
        inputs = {k: v.numpy() for k, v in graphs.decoder_inputs(dims, batch, cache).items()}
        inputs.update({k: v.numpy() for k, v in enc_ref.items()})
        inputs["position"][0] = min(3, cache - 1)
        inputs["token_ids"][:] = bundle.tokens["bos"]
        inputs["cross_bias"] = cross_bias(dims.image_tokens, mask)
        dec_ref = graphs.DecoderStepGraph(model, dims, cache)(**{k: torch.from_numpy(v) for k, v in inputs.items()})
        dec_ours = litert(mf.DECODER, mf.decode_signature_name(batch, cache, dims.prompt_len))(**inputs)
        report[mf.DECODER] = _errors(dec_ours["logits"], dec_ref["logits"].numpy())
    return report


def reference_tokens(source: Source, image: Image.Image, task: str, text: str | None, max_new_tokens: int,
                     num_beams: int = 1) -> list[int]:
    """transformers' generate() for one case, without the decoder start token."""
    inputs = source.processor(text=task + (text or ""), images=image, return_tensors="pt")
    g = source.model.generation_config
    with torch.no_grad():
        out = source.model.generate(
            **inputs, max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=False,
            no_repeat_ngram_size=g.no_repeat_ngram_size,
            **({"early_stopping": g.early_stopping} if num_beams > 1 else {}),
        )
    return out[0, 1:].tolist()


@contextlib.contextmanager
def _vision_tower_once(model):
    """generate() runs the vision tower again for every task of a picture (2.7 of the 4.3 s of a base
    CAPTION here); its features are the same each time, so they are kept per picture's pixels."""
    inner = model.model
    compute, seen = inner.get_image_features, {}

    def features(pixel_values, **kwargs):
        key = hashlib.sha256(pixel_values.numpy().tobytes()).hexdigest() + str(tuple(pixel_values.shape))
        if key not in seen:
            seen[key] = compute(pixel_values, **kwargs)
        return seen[key]

    inner.get_image_features = features
    try:
        yield
    finally:
        del inner.get_image_features  # the class's own method again


def token_agreement(source: Source, bundle_dir, images, cases=CASES, max_new_tokens: int = DEFAULT_TOKENS) -> dict:
    """Greedy tokens of the bundle vs generate() on every (image, task) pair."""
    model = Florence2(bundle_dir, num_threads=2)
    rows = []
    with _vision_tower_once(source.model):
        for index, image in enumerate(images):
            enc = model.encode(image)
            for task, text in cases:
                ref = reference_tokens(source, image, task, text, max_new_tokens)
                ours = model.run(enc, task, text, num_beams=1, max_new_tokens=max_new_tokens).token_ids
                length = max(len(ref), len(ours))
                same = sum(a == b for a, b in zip(ref, ours))
                rows.append({"image": index, "task": task, "exact": ours == ref, "agreement": same / length,
                             "tokens": len(ref)})
    return {
        "cases": rows,
        "exact": sum(r["exact"] for r in rows),
        "total": len(rows),
        "mean_agreement": float(np.mean([r["agreement"] for r in rows])),
        "max_new_tokens": max_new_tokens,
    }


def parity_report(source: Source, bundle_dir, max_new_tokens: int = DEFAULT_TOKENS,
                  min_agreement: float = INT8_MIN_AGREEMENT) -> dict:
    bundle = mf.load_manifest(bundle_dir)
    images = sample_images()
    tokens = token_agreement(source, bundle_dir, images, max_new_tokens=max_new_tokens)
    exact_needed = bundle.quantization == "fp32"
    passed = tokens["exact"] == tokens["total"] if exact_needed else tokens["mean_agreement"] >= min_agreement
    return {
        "graphs": graph_errors(source, bundle, images[0]),
        "tokens": tokens,
        "criterion": "token-exact" if exact_needed else f"mean agreement >= {min_agreement}",
        "passed": bool(passed),
    }


def probe_record(bundle_dir) -> dict:
    """The manifest's `probe`: the self-test picture answered on each runtime path that runs this
    bundle here (the compiled one first, packing in memory), what may move between them allowed."""
    measured = []
    for runtime in RUNTIMES:
        with contextlib.suppress(FlorenceEdgeError):  # a recipe only the compiled path runs
            model = Florence2(bundle_dir, num_threads=2, weight_cache=False, runtime=runtime)
            measured.append(probe.measure(model, probe.probe_tasks(model.manifest)))
            model.close()
    return probe.record(measured)


def format_report(report: dict) -> str:
    lines = [f"{'graph':<9} {'max abs':>10} {'rel L2':>10} {'cosine':>9}"]
    for role, e in report["graphs"].items():
        lines.append(f"{role:<9} {e['max_abs']:>10.3g} {e['rel_l2']:>10.3g} {e['cosine']:>9.6f}")
    t = report["tokens"]
    lines.append("")
    lines.append(f"{'image':<6}{'task':<32}{'tokens':>7}{'agree':>8}  exact")
    for r in t["cases"]:
        exact = "yes" if r["exact"] else "no"
        lines.append(f"{r['image']:<6}{r['task']:<32}{r['tokens']:>7}{r['agreement']:>8.2f}  {exact}")
    verdict = "PASS" if report["passed"] else "FAIL"
    lines.append(f"\ntoken-exact {t['exact']}/{t['total']}, mean agreement {t['mean_agreement']:.3f} "
                 f"({report['criterion']}): {verdict}")
    return "\n".join(lines)


def verify(bundle_dir, against: str, max_new_tokens: int = DEFAULT_TOKENS,
           min_agreement: float = INT8_MIN_AGREEMENT) -> dict:
    """Python twin of `florence-edge verify`."""
    mf.load_manifest(bundle_dir)
    return parity_report(load_source(against), bundle_dir, max_new_tokens, min_agreement)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="bundle directory")
    parser.add_argument("--against", required=True, metavar="SRC", help="checkpoint: hub id or local directory")
    parser.add_argument("--tokens", type=int, default=DEFAULT_TOKENS, help="new tokens per case (greedy)")
    parser.add_argument("--min-agreement", type=float, default=INT8_MIN_AGREEMENT,
                        help="pass mark for quantized bundles (mean token agreement)")


def main(args: argparse.Namespace) -> int:
    report = verify(args.bundle, args.against, args.tokens, args.min_agreement)
    print(format_report(report))
    return 0 if report["passed"] else 1

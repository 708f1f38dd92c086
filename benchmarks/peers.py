"""Florence-2-base latency, side by side: transformers, ONNX Runtime, florence-edge (LiteRT).

    python benchmarks/peers.py --threads 2 --new-tokens 20

One run on one machine: makes a base-sized checkpoint with random weights (identical
for every runtime), converts it with our converter, exports the ONNX Runtime peer,
and measures every runtime with the same threads, image, prompt and token count.
Prints a markdown table with ratios and writes a PNG of the latency breakdown.
Not part of the installed package; needs the `convert` and `test` extras (`make test`
installs them) and matplotlib.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import ort_peer  # noqa: E402
from converters import graphs  # noqa: E402
from converters.convert import convert  # noqa: E402
from converters.source import load_source  # noqa: E402
from converters.test_checkpoints import write_test_checkpoint  # noqa: E402
from edge import cpu  # noqa: E402
from edge.bench import decode_fixed  # noqa: E402
from edge.errors import FlorenceEdgeError  # noqa: E402
from edge.live.doctor import cpu_features  # noqa: E402
from edge.manifest import DECODER, decode_signature_name, load_manifest  # noqa: E402
from edge.memory import peak_rss_mb  # noqa: E402
from edge.model import Florence2  # noqa: E402
from edge.preprocess import pixel_values  # noqa: E402
from edge.scenes import make_scene  # noqa: E402

TASK = "<CAPTION>"


def median_ms(fn, reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def last_level_cache_bytes() -> int:
    """The largest CPU cache Linux reports (0 if it does not say)."""
    sizes = []
    for entry in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = entry.read_text().strip().upper()
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        sizes.append(int(text.rstrip("KMG")) * scale)
    return max(sizes, default=0)


def read_bandwidth_gbs(threads: int, megabytes: int | None = None) -> float:
    """Sequential read bandwidth with `threads` threads (8-byte integer sums: memory-bound, GIL released),
    over a buffer 8x the last-level cache Linux reports and at least 2 GB (a VM may report one core
    complex's cache of several), so memory is measured, not a cache."""
    megabytes = megabytes or max(2048, 8 * last_level_cache_bytes() // 2**20)
    data = np.ones(megabytes * 2**17, np.uint64)
    parts = np.array_split(data, threads)

    def read():
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda p: int(p.sum()), parts))

    return data.nbytes / (median_ms(read, 5) / 1e3) / 1e9


def decoder_weight_bytes(path: Path, signature: str) -> int:
    """int8 weight bytes one decoder step reads: every int8 constant of its subgraph, except a
    gathered embedding table (one row is read) when the tied lm_head is stored apart from it."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    sub = interp._interpreter.GetSubgraphIndexFromSignature(signature)
    sizes = [int(np.prod(d["shape"])) for d in interp.get_tensor_details(sub)
             if d["dtype"] == np.int8 and len(d["shape"]) == 2]
    largest = max(sizes)
    return sum(sizes) - (largest if sizes.count(largest) > 1 else 0)


def step_input_bytes(manifest, signature: str) -> int:
    """Bytes a decoder step reads besides its weights: every input tensor of the signature (the fp32
    cross-attention K/V over image and prompt, the self-attention cache, the token)."""
    inputs = manifest.signature(DECODER, signature)["inputs"]
    return sum(int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize for t in inputs.values())


def cpu_line() -> str:
    """The CPU and the instruction-set features the int8 kernels use, printed with every figure: ratios
    move with them."""
    have = [label for label, present in cpu_features().items() if present]
    return f"{cpu.name()} ({cpu.machine()}; {', '.join(have) or 'features not reported'})"


def prepare(work: Path) -> tuple[Path, dict[str, Path]]:
    ckpt = work / "base-checkpoint"
    if not (ckpt / "config.json").exists():
        print("[peers] writing base-sized checkpoint", file=sys.stderr)
        write_test_checkpoint(ckpt, "base", seed=0)
    bundles = {}
    for quant in ("int8", "fp32"):
        bundles[quant] = work / f"florence-edge-{quant}"
        if not _current(bundles[quant]):
            print(f"[peers] converting ({quant})", file=sys.stderr)
            convert(str(ckpt), bundles[quant], quant=quant, force=True)
    return ckpt, bundles


def _current(bundle: Path) -> bool:
    try:
        load_manifest(bundle)
    except FlorenceEdgeError:  # missing, or an older format: convert again
        return False
    return True


def measure_transformers(source, image, prompt_ids, threads, new_tokens, reps) -> dict:
    torch.set_num_threads(threads)
    model, proc = source.model, source.processor
    inputs = proc(text=TASK, images=image, return_tensors="pt")
    with torch.no_grad():
        vision = median_ms(lambda: model.get_image_features(inputs["pixel_values"]), reps)
        feats = model.get_image_features(inputs["pixel_values"]).pooler_output
        embeds = torch.cat([feats, model.get_input_embeddings()(torch.from_numpy(prompt_ids))], 1)
        encoder = median_ms(lambda: model.model.language_model.encoder(inputs_embeds=embeds), reps)

        def generate(beams):
            return model.generate(**inputs, num_beams=beams, do_sample=False, min_new_tokens=new_tokens,
                                  max_new_tokens=new_tokens, no_repeat_ngram_size=3)

        greedy = median_ms(lambda: generate(1), reps)
        beam3 = median_ms(lambda: generate(3), max(1, reps // 2))
    step = (greedy - vision - encoder) / new_tokens
    return {"vision": vision, "encoder": encoder, "step": step, "e2e": greedy, "e2e_beam3": beam3}


def measure_ort(paths, dims, image_pixels, prompt_ids, settings, threads, new_tokens, reps) -> dict:
    ort = ort_peer.OrtFlorence(paths, dims, threads)
    vision = median_ms(lambda: ort.vision(image_pixels), reps)
    feats = ort.vision(image_pixels)
    encoder = median_ms(lambda: ort.encoder(feats, prompt_ids.astype(np.int64)), reps)
    cross = ort.encoder(feats, prompt_ids.astype(np.int64))
    steps = []
    for _ in range(reps):
        steps += ort.decode(cross, settings, new_tokens)[1]
    step = statistics.median(steps)
    return {"vision": vision, "encoder": encoder, "step": step, "e2e": vision + encoder + step * new_tokens}


def measure_ours(bundle: Path, image, threads, new_tokens, reps) -> dict:
    model = Florence2(bundle, num_threads=threads)
    vision = median_ms(lambda: model.encode(image), reps)
    enc = model.encode(image)
    encoders, steps = [], []
    for _ in range(reps + 1):
        e_ms, first, rest = decode_fixed(model, enc, TASK, new_tokens)
        encoders.append(e_ms)
        steps += [first, *rest]
    step = statistics.median(steps)
    encoder = statistics.median(encoders[1:])
    return {"vision": vision, "encoder": encoder, "step": step, "e2e": vision + encoder + step * new_tokens}


def peak_rss_of_run(bundle: Path, image_path: Path, threads: int) -> float:
    """Peak RSS (MB) of a fresh process doing a whole `run` (load, vision, encoder, 3-beam decode)."""
    code = textwrap.dedent(f"""
        from edge import Florence2
        from edge.memory import peak_rss_mb
        m = Florence2({str(bundle)!r}, num_threads={threads})
        m.run({str(image_path)!r}, "<CAPTION>", max_new_tokens=64)
        print(peak_rss_mb())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return float(out.stdout.strip().splitlines()[-1])


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    parts = [("vision", "vision"), ("encoder", "text encoder"), ("decode", "decode")]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    left = np.zeros(len(names))
    for key, label in parts:
        values = np.array([results[n][key] for n in names])
        ax.barh(names, values, left=left, label=label)
        left += values
    ax.set_xlabel("ms, CAPTION end to end (greedy)")
    ax.invert_yaxis()
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="build/bench", help="checkpoints, bundles and ONNX files go here")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=20)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args(argv)
    missing = [name for name in ("onnx", "onnxruntime", "matplotlib") if importlib.util.find_spec(name) is None]
    if missing:  # say so now, not after twenty minutes of converting and measuring
        print(f"peers: missing {', '.join(missing)}: pip install {' '.join(missing)}", file=sys.stderr)
        return 2
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ckpt, bundles = prepare(work)
    source = load_source(str(ckpt))
    manifest = load_manifest(bundles["int8"])
    dims = graphs.Dims.from_model(source.model, source.image_size[0], source.image_tokens,
                                  manifest.model["prompt_len"])
    image = make_scene(1_000_000).image
    image_path = work / "scene.png"
    image.save(image_path)
    ip = source.image_processor
    pixels = pixel_values(image, source.image_size, ip.image_mean, ip.image_std, ip.resample, ip.rescale_factor)
    prompt_ids = np.array([source.processor.tokenizer.encode(
        "<s>" + source.processor.task_prompts_without_inputs[TASK] + "</s>", add_special_tokens=False)])
    n, r, t = args.new_tokens, args.reps, args.threads
    # Greedy with generate()'s processors; one spare step so the forced EOS never lands inside the run.
    settings = Florence2(bundles["fp32"], num_threads=t).settings(num_beams=1, max_new_tokens=n + 1)

    onnx_dir = work / "onnx"
    if not (onnx_dir / "fp32" / "decoder.onnx").exists():
        print("[peers] exporting ONNX", file=sys.stderr)
        fp32_paths = ort_peer.export(source.model, dims, onnx_dir / "fp32")
        ort_peer.quantize(fp32_paths, onnx_dir / "int8")
        ort_peer.quantize({"vision": fp32_paths["vision"]}, onnx_dir / "int8-matmul", vision_ops=["MatMul"])
    onnx = {q: {k: onnx_dir / q / f"{k}.onnx" for k in ("vision", "embed", "encoder", "decoder")}
            for q in ("fp32", "int8")}
    onnx["int8"]["vision"] = onnx_dir / "int8-matmul" / "vision.onnx"  # ORT's best int8 vision recipe

    results = {}
    print("[peers] transformers", file=sys.stderr)
    results["transformers fp32"] = measure_transformers(source, image, prompt_ids, t, n, r)
    for q in ("fp32", "int8"):
        print(f"[peers] onnxruntime {q}", file=sys.stderr)
        results[f"ONNX Runtime {q}"] = measure_ort(onnx[q], dims, pixels, prompt_ids, settings, t, n, r)
    for q in ("fp32", "int8"):
        print(f"[peers] florence-edge {q}", file=sys.stderr)
        results[f"florence-edge {q}"] = measure_ours(bundles[q], image, t, n, r)
    for res in results.values():
        res["decode"] = res["step"] * n
    bandwidth = read_bandwidth_gbs(t)
    step_signature = decode_signature_name(1, 64, manifest.prompt_lens[0])
    decoder_mb = decoder_weight_bytes(bundles["int8"] / "decoder.tflite", step_signature) / 1e6
    inputs_mb = step_input_bytes(manifest, step_signature) / 1e6
    floor_ms = (decoder_mb + inputs_mb) / 1e3 / bandwidth * 1e3
    rss = peak_rss_of_run(bundles["int8"], image_path, t)

    ours, hf, ort8 = results["florence-edge int8"], results["transformers fp32"], results["ONNX Runtime int8"]
    lines = [f"| runtime | vision ms | text encoder ms | decoder ms/step | CAPTION e2e ms ({n} tokens, greedy) |",
             "|---|---|---|---|---|"]
    for name, res in results.items():
        lines.append(f"| {name} | {res['vision']:.0f} | {res['encoder']:.0f} | {res['step']:.2f} | {res['e2e']:.0f} |")
    lines.append(f"| transformers fp32, 3 beams | | | | {hf['e2e_beam3']:.0f} |")
    ratios = [
        ("vision vs transformers", hf["vision"] / ours["vision"], 3.5),
        ("vision vs ONNX Runtime int8", ort8["vision"] / ours["vision"], 1.2),
        ("decoder step vs ONNX Runtime int8", ort8["step"] / ours["step"], 1.0),
        ("decoder step vs transformers", hf["step"] / ours["step"], 4.0),
        ("decoder step vs bandwidth floor (lower is better)", ours["step"] / floor_ms, None),
        ("CAPTION e2e vs transformers greedy", hf["e2e"] / ours["e2e"], 4.0),
        ("CAPTION e2e vs transformers 3-beam", hf["e2e_beam3"] / ours["e2e"], 10.0),
    ]
    lines += ["", "| florence-edge int8 ratio | measured | target |", "|---|---|---|"]
    for label, value, target in ratios:
        goal = f">= {target}x" if target else "<= 1.3x"
        lines.append(f"| {label} | {value:.2f}x | {goal} |")
    lines += ["", f"CPU: {cpu_line()}. A decoder step reads {decoder_mb:.0f} MB of int8 weights and "
              f"{inputs_mb:.0f} MB of inputs (cross-attention K/V, cache); read bandwidth with {t} threads over "
              f"a buffer of at least 2 GB {bandwidth:.1f} GB/s; floor {floor_ms:.2f} ms/step. Peak RSS "
              f"of a whole `run` on the int8 bundle: {rss:.0f} MB (target <= 450 MB). Threads {t}; peak RSS of "
              f"this benchmark process {peak_rss_mb():.0f} MB."]
    table = "\n".join(lines)
    print(table)
    chart(results, work / "latency.png")
    print(f"\nchart: {work / 'latency.png'}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "bandwidth_gbs": bandwidth, "floor_ms": floor_ms,
                                               "peak_rss_mb": rss}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

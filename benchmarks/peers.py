"""Florence-2-base latency, side by side: transformers, ONNX Runtime, florence-edge (LiteRT).

    python benchmarks/peers.py --threads 2 --new-tokens 20 [--size large]

One run on one machine: makes a base- (or large-) sized checkpoint with random weights (identical
for every runtime), converts it with our converter (int8, int4, fp32), exports the ONNX Runtime peer,
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
from edge.demo.scenes import make_scene  # noqa: E402
from edge.errors import FlorenceEdgeError  # noqa: E402
from edge.fixed_decode import decode_fixed  # noqa: E402
from edge.live.doctor import cpu_features  # noqa: E402
from edge.manifest import DECODER, decode_signature_name, load_manifest  # noqa: E402
from edge.memory import peak_rss_mb  # noqa: E402
from edge.model import Florence2  # noqa: E402
from edge.preprocess import pixel_values  # noqa: E402

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
    """Weight bytes one decoder step reads: every int8 or int4 constant of its subgraph and the
    float16 block scales, except a gathered embedding table (one row is read) when the tied lm_head
    is stored apart from it (the same element count twice)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    index = next(model.SignatureDefs(i).SubgraphIndex() for i in range(model.SignatureDefsLength())
                 if model.SignatureDefs(i).SignatureKey().decode() == signature)
    subgraph = model.Subgraphs(index)
    weights, scales = [], 0
    for tensor in (subgraph.Tensors(i) for i in range(subgraph.TensorsLength())):
        buffer = model.Buffers(tensor.Buffer())
        size = buffer.DataLength() or (buffer.Size() if buffer.Offset() > 1 else 0)  # inline, or after the flatbuffer
        if tensor.Type() in (schema.TensorType.INT8, schema.TensorType.INT4) and tensor.ShapeLength() == 2:
            weights.append((int(tensor.ShapeAsNumpy().prod()), size))
        elif tensor.Type() == schema.TensorType.FLOAT16:
            scales += size
    largest = max(weights)
    return sum(size for _, size in weights) + scales - (largest[1] if weights.count(largest) > 1 else 0)


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


QUANTS = ("int8", "int4", "int4-vision", "fp32")


def prepare(work: Path, size: str, quants) -> tuple[Path, dict[str, Path]]:
    ckpt = work / f"{size}-checkpoint"
    if not (ckpt / "config.json").exists():
        print(f"[peers] writing {size}-sized checkpoint", file=sys.stderr)
        write_test_checkpoint(ckpt, size, seed=0)
    bundles = {}
    for quant in quants:
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
    """Peak RSS (MB) of `florence-edge run` as a user runs it (a fresh process: load, vision, text
    encoder, greedy CAPTION of 20 tokens). The child reports its own VmHWM: the rusage a parent gets
    counts the memory the child had when it was forked from this (large) process."""
    argv = ["run", "-m", str(bundle), "-i", str(image_path), "-t", "CAPTION", "--max-new-tokens", "20",
            "--threads", str(threads)]
    code = ("import sys; from edge.cli import main; from edge.memory import peak_rss_mb; "
            f"code = main({argv!r}); print(peak_rss_mb(), file=sys.stderr); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    if done.returncode:
        raise SystemExit(f"peers: florence-edge run on {bundle} failed: {done.stderr.strip()[-300:]}")
    return float(done.stderr.strip().splitlines()[-1])


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


def floor_of(bundle: Path, bandwidth: float) -> dict:
    """What one decoder step of a quantized bundle (b1, smallest cache and prompt buckets) must read,
    and the ms that takes at `bandwidth` GB/s."""
    manifest = load_manifest(bundle)
    signature = decode_signature_name(1, manifest.decoder_buckets()[0][1], manifest.prompt_lens[0])
    weights_mb = decoder_weight_bytes(bundle / "decoder.tflite", signature) / 1e6
    inputs_mb = step_input_bytes(manifest, signature) / 1e6
    return {"weights_mb": weights_mb, "inputs_mb": inputs_mb, "ms": (weights_mb + inputs_mb) / bandwidth}


# (label, ratio of a florence-edge result against the peers, target; None: "<= 1.3x", lower is better)
RATIOS = [
    ("vision vs transformers", lambda ours, peers: peers["transformers fp32"]["vision"] / ours["vision"], 3.5),
    ("vision vs ONNX Runtime int8", lambda ours, peers: peers["ONNX Runtime int8"]["vision"] / ours["vision"], 1.2),
    ("decoder step vs ONNX Runtime int8", lambda ours, peers: peers["ONNX Runtime int8"]["step"] / ours["step"], 1.0),
    ("decoder step vs transformers", lambda ours, peers: peers["transformers fp32"]["step"] / ours["step"], 4.0),
    ("decoder step vs bandwidth floor (lower is better)", lambda ours, peers: ours["step"] / ours["floor_ms"], None),
    ("CAPTION e2e vs transformers greedy", lambda ours, peers: peers["transformers fp32"]["e2e"] / ours["e2e"], 5.0),
    ("CAPTION e2e vs transformers 3-beam", lambda ours, peers: peers["transformers fp32"]["e2e_beam3"] / ours["e2e"],
     10.0),
]


def report(results: dict, floors: dict, rss: dict, bandwidth: float, size: str, n: int, t: int) -> str:
    lines = [f"| runtime ({size}-sized) | vision ms | text encoder ms | decoder ms/step | "
             f"CAPTION e2e ms ({n} tokens, greedy) |", "|---|---|---|---|---|"]
    for name, res in results.items():
        lines.append(f"| {name} | {res['vision']:.0f} | {res['encoder']:.0f} | {res['step']:.2f} | {res['e2e']:.0f} |")
    lines.append(f"| transformers fp32, 3 beams | | | | {results['transformers fp32']['e2e_beam3']:.0f} |")
    quantized = list(floors)
    lines += ["", "| florence-edge ratio | " + " | ".join(quantized) + " | target |",
              "|---|" + "---|" * len(quantized) + "---|"]
    for label, ratio, target in RATIOS:
        cells = [f"{ratio(results[f'florence-edge {q}'], results):.2f}x" for q in quantized]
        lines.append(f"| {label} | {' | '.join(cells)} | {f'>= {target}x' if target else '<= 1.3x'} |")
    lines.append("")
    for q in quantized:
        f = floors[q]
        lines.append(f"- {q}: a decoder step reads {f['weights_mb']:.0f} MB of weights (with their scales) and "
                     f"{f['inputs_mb']:.0f} MB of inputs (cross-attention K/V, cache): floor {f['ms']:.2f} ms/step; "
                     f"peak RSS of a whole `run` {rss[q]:.0f} MB.")
    lines.append(f"- CPU: {cpu_line()}; read bandwidth with {t} threads over at least 2 GB {bandwidth:.1f} GB/s; "
                 f"threads {t}; peak RSS of this benchmark process {peak_rss_mb():.0f} MB.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="build/bench", help="checkpoints, bundles and ONNX files go here")
    parser.add_argument("--size", default="base", choices=("base", "large"), help="Florence-2 size to build")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=20)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quants", default=",".join(QUANTS),
                        help="florence-edge recipes to convert and measure (int8 among them)")
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args(argv)
    quants = args.quants.split(",")
    if "int8" not in quants or not set(quants) <= set(QUANTS):
        parser.error(f"--quants: some of {', '.join(QUANTS)}, int8 among them")
    missing = [name for name in ("onnx", "onnxruntime", "matplotlib") if importlib.util.find_spec(name) is None]
    if missing:  # say so now, not after twenty minutes of converting and measuring
        print(f"peers: missing {', '.join(missing)}: pip install {' '.join(missing)}", file=sys.stderr)
        return 2
    work = Path(args.work) / args.size
    work.mkdir(parents=True, exist_ok=True)
    ckpt, bundles = prepare(work, args.size, quants)
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
    settings = Florence2(bundles["int8"], num_threads=t).settings(num_beams=1, max_new_tokens=n + 1)

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
    for q in quants:
        print(f"[peers] florence-edge {q}", file=sys.stderr)
        results[f"florence-edge {q}"] = measure_ours(bundles[q], image, t, n, r)
    for res in results.values():
        res["decode"] = res["step"] * n
    bandwidth = read_bandwidth_gbs(t)
    quantized = [q for q in quants if q != "fp32"]
    floors = {q: floor_of(bundles[q], bandwidth) for q in quantized}
    for q in quantized:
        results[f"florence-edge {q}"]["floor_ms"] = floors[q]["ms"]
    rss = {q: peak_rss_of_run(bundles[q], image_path, t) for q in quantized}

    print(report(results, floors, rss, bandwidth, args.size, n, t))
    chart(results, work / "latency.png")
    print(f"\nchart: {work / 'latency.png'}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"size": args.size, "cpu": cpu_line(), "results": results,
                                               "bandwidth_gbs": bandwidth, "floors": floors, "peak_rss_mb": rss},
                                              indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

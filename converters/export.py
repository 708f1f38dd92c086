"""Convert the export wrappers to LiteRT flatbuffers, one file per graph."""

from __future__ import annotations

import contextlib
import multiprocessing
import traceback
from dataclasses import replace
from pathlib import Path

import torch

from converters import graphs
from edge.manifest import DECODER, ENCODER, VISION, decode_signature_name, encode_signature_name


def convert_graphs(model, dims: graphs.Dims, buckets: list[tuple[int, int]], prompt_lens: list[int],
                   out_dir: Path, progress, parallel: bool = False) -> tuple[dict, dict]:
    """Write vision/encoder/decoder fp32 .tflite files into out_dir.

    The text encoder has a signature per prompt length, the decoder one per (batch,
    cache, prompt length): a short prompt's encoder and every decoder step then run
    over 577 + 32 positions, not 577 + 128.

    `parallel`: convert the decoder (the longest: 12 signatures by default) in a second process
    while this one converts the others; tracing and lowering a signature runs on one core.

    Returns role -> path and role -> signature -> {"inputs"/"outputs": name -> shape},
    the tensors' real shapes (the files hold them flat).
    """
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
    aside = _Aside(plans[DECODER], out_dir) if parallel else contextlib.nullcontext()
    with aside:
        for role, signatures in plans.items():
            label = f"convert {role} graph ({len(signatures)} signature{'s' * (len(signatures) > 1)})"
            if parallel and role == DECODER:
                with progress(f"{label}, in a second process since the start"):
                    paths[role], shapes[role] = aside.result()
                continue
            with progress(label):
                paths[role], shapes[role] = convert_role(role, signatures, out_dir)
    return paths, shapes


def convert_role(role: str, signatures, out_dir: Path) -> tuple[Path, dict]:
    """One graph's file with every signature of `signatures` ((name, module, sample) each), and the
    signatures' real input and output shapes."""
    import litert_torch

    converter, shapes = None, {}
    for name, module, sample in signatures:
        flat = graphs.FlatIO(module.eval(), sample).eval()
        shapes[name] = {"inputs": flat.input_shapes, "outputs": flat.output_shapes}
        converter = (litert_torch if converter is None else converter).signature(name, flat,
                                                                                  sample_kwargs=flat.flat_sample)
    with torch.no_grad():
        path = out_dir / f"{role}.fp32.tflite"
        converter.convert().export(str(path))
    return path, shapes


class _Aside:
    """The decoder's conversion in a second process, started before the other graphs'. Spawned, not
    forked: a forked torch can hang on its thread pool. Its exception comes back as a
    `SecondProcessFailed` carrying its traceback; leaving early (another graph failed) ends it."""

    def __init__(self, signatures, out_dir: Path):
        context = multiprocessing.get_context("spawn")
        self.receive, send = context.Pipe(duplex=False)
        self.process = context.Process(target=_convert_and_send, args=(signatures, out_dir, send), daemon=True)
        self.process.start()
        send.close()

    def result(self) -> tuple[Path, dict]:
        try:
            outcome, value = self.receive.recv()
        except EOFError:
            self.process.join()
            raise SecondProcessFailed(f"the process died (exit code {self.process.exitcode}; out of memory?)",
                                      "") from None
        if outcome == "error":
            raise SecondProcessFailed(*value)
        return value

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.receive.close()


class SecondProcessFailed(RuntimeError):
    def __init__(self, said: str, child_traceback: str):
        super().__init__(said)
        self.held_log = child_traceback  # into the stage's log file


def _convert_and_send(signatures, out_dir: Path, send) -> None:
    try:
        send.send(("ok", convert_role(DECODER, signatures, out_dir)))
    except Exception as exc:  # anything: the parent names the stage and writes the log
        send.send(("error", (str(exc) or type(exc).__name__, traceback.format_exc())))

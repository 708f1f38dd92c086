"""Write a bundle directory: graphs, tokenizer and the manifest that describes them."""

from __future__ import annotations

import datetime as dt
import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

from converters.errors import ConversionError
from converters.graphs import Dims
from converters.source import Source
from edge import manifest as mf

GRAPH_FILES = {role: f"{role}.tflite" for role in mf.GRAPH_ROLES}
_TOOLS = ("florence-edge", "torch", "transformers", "litert-torch", "ai-edge-quantizer", "ai-edge-litert", "tokenizers")


def write_tokenizer(source: Source, out_dir: Path) -> None:
    source.processor.tokenizer.backend_tokenizer.save(str(out_dir / mf.TOKENIZER_NAME))


def special_tokens(source: Source) -> dict:
    tok = source.processor.tokenizer
    text = source.model.config.text_config
    ids = {name: tok.convert_tokens_to_ids(token) for name, token in
           (("bos", "<s>"), ("eos", "</s>"), ("pad", "<pad>"), ("loc_0", "<loc_0>"), ("loc_999", "<loc_999>"),
            ("poly", "<poly>"), ("poly_end", "</poly>"), ("sep", "<sep>"))}
    ids["decoder_start"] = text.decoder_start_token_id
    ids["image"] = source.model.config.image_token_id
    return ids


def task_table(source: Source) -> dict:
    proc = source.processor
    prompts = {**proc.task_prompts_without_inputs, **proc.task_prompts_with_input}
    return {task: {"prompt": prompt, "post_processing": proc.tasks_answer_post_processing_type.get(task, "pure_text")}
            for task, prompt in prompts.items()}


def trained_tasks(source: Source, tasks: dict) -> list[str] | None:
    """The tasks the checkpoint says its model was trained for (`trained_tasks` in config.json);
    None when it does not say (Microsoft's models: every task)."""
    trained = getattr(source.model.config, "trained_tasks", None)
    if trained is None:
        return None
    if not isinstance(trained, list) or not trained or not set(trained) <= set(tasks):
        raise ConversionError(f"{source.ident}: config.json's trained_tasks must be a list of the processor's "
                              f"tasks ({', '.join(sorted(tasks))})")
    return list(trained)


def generation_defaults(source: Source) -> dict:
    g = source.model.generation_config
    text = source.model.config.text_config
    return {
        "num_beams": int(g.num_beams or 1),
        "no_repeat_ngram_size": int(g.no_repeat_ngram_size or 0),
        "early_stopping": bool(g.early_stopping),
        "length_penalty": float(g.length_penalty if g.length_penalty is not None else 1.0),
        "max_new_tokens": int(g.max_new_tokens or 1024),
        "forced_bos_token_id": g.forced_bos_token_id if g.forced_bos_token_id is not None else text.bos_token_id,
        "forced_eos_token_id": g.forced_eos_token_id if g.forced_eos_token_id is not None else text.eos_token_id,
    }


def image_settings(source: Source) -> dict:
    ip = source.image_processor
    height, width = source.image_size
    return {"height": height, "width": width, "mean": [float(v) for v in ip.image_mean],
            "std": [float(v) for v in ip.image_std], "resample": int(ip.resample),
            "rescale_factor": float(ip.rescale_factor)}


def model_dims(dims: Dims, prompt_lens: list[int], source: Source) -> dict:
    """The model's sizes; `prompt_len` (and `encoder_len`) are the longest prompt's."""
    vision = source.model.config.vision_config
    return {
        "d_model": dims.d_model, "encoder_layers": dims.encoder_layers, "decoder_layers": dims.decoder_layers,
        "heads": dims.heads, "head_dim": dims.head_dim, "vocab_size": dims.vocab_size,
        "image_tokens": dims.image_tokens, "prompt_len": dims.prompt_len, "encoder_len": dims.encoder_len,
        "prompt_lens": sorted(prompt_lens), "max_positions": dims.max_positions,
        "vision": {"embed_dim": list(vision.embed_dim), "depths": list(vision.depths),
                   "num_heads": list(vision.num_heads), "window_size": vision.window_size},
    }


def signatures_of(path: Path, shapes: dict) -> dict:
    """Every signature's inputs and outputs: real shape (from `shapes`) and dtype (read back from the file)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    out = {}
    for key in interp.get_signature_list():
        runner = interp.get_signature_runner(key)
        out[key] = {}
        for side, details in (("inputs", runner.get_input_details), ("outputs", runner.get_output_details)):
            out[key][side] = {}
            for name, det in details().items():
                shape = [int(d) for d in shapes[key][side][name]]
                if int(np.prod(shape)) != int(np.prod(det["shape"])):
                    raise ConversionError(f"{path.name} {key}/{name} holds {det['shape']}, expected {shape}")
                out[key][side][name] = {"shape": shape, "dtype": det["dtype"].__name__}
    return out


def tool_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in _TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def build_manifest(source: Source, dims: Dims, buckets, prompt_lens, quantization: dict, out_dir: Path,
                   shapes: dict) -> dict:
    """`shapes`: role -> signature -> real tensor shapes, as `export.convert_graphs` returns them."""
    graphs = {role: {"file": name, "signatures": signatures_of(out_dir / name, shapes[role])}
              for role, name in GRAPH_FILES.items()}
    graphs[mf.DECODER]["buckets"] = [{"batch": b, "cache": s} for b, s in buckets]
    files = [*GRAPH_FILES.values(), mf.TOKENIZER_NAME]
    return {
        "format": mf.FORMAT,
        "format_version": mf.FORMAT_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source": {"id": source.ident, "revision": source.revision},
        "model": model_dims(dims, prompt_lens, source),
        "image": image_settings(source),
        "special_tokens": special_tokens(source),
        "tasks": task_table(source),
        "trained_tasks": trained_tasks(source, task_table(source)),
        "post_processing": source.processor.post_processor_config or {},
        "generation": generation_defaults(source),
        "graphs": graphs,
        "files": {name: {"bytes": (out_dir / name).stat().st_size, "sha256": mf.sha256_of(out_dir / name)}
                  for name in files},
        "quantization": quantization,
        "tools": tool_versions(),
        "parity": None,
    }


def write_manifest(manifest: dict, out_dir: Path) -> None:
    (out_dir / mf.MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")

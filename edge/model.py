"""`Florence2`: a bundle on the device. Encode an image once, run any task on it."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from edge import manifest as mf
from edge.confidence import answer_score, shape_scores
from edge.cpu import usable_cpus
from edge.decoding import Choice, DecodeSettings, beam_search, greedy
from edge.errors import FlorenceEdgeError, FlorenceEdgeWarning
from edge.integrity import verify_bundle
from edge.kv_cache import DecoderSession, GrowingDecoder
from edge.memory import give_back_freed_memory
from edge.postprocess import parse
from edge.preprocess import load_image, pixel_values
from edge.prompts import build_prompt, check_input, check_region, clamp_region, normalize_task, region_to_loc_tokens
from edge.runtime import Signature, cache_folder, open_graph, select_runtime, weight_cache_file
from edge.text import TextCodec


@dataclass
class Encoded:
    """An image after the vision graph: reusable for any number of tasks."""

    features: np.ndarray
    image_size: tuple[int, int]  # original (width, height): outputs are in these pixels
    vision_ms: float


@dataclass
class Timings:
    vision_ms: float = 0.0
    encoder_ms: float = 0.0
    decode_ms: float = 0.0
    tokens: int = 0


@dataclass
class Result:
    """`score`: how sure the decoder was of the whole answer (0-1); `scores`: one per shape, in the
    order of the parsed answer's `bboxes`, `quad_boxes` and `polygons` lists (`edge.confidence`);
    `choices`: each token with its probabilities."""

    task: str
    text: str
    token_ids: list[int]
    parsed: object
    timings: Timings = field(default_factory=Timings)
    score: float = 1.0
    scores: dict = field(default_factory=dict)
    choices: list[Choice] = field(default_factory=list, repr=False)


@dataclass
class TokenEvent:
    """One streamed piece: `text` is what the new token(s) added to the output."""

    token_ids: list[int]
    text: str
    result: Result | None = None  # set on the last event only


class Florence2:
    def __init__(self, bundle_dir, num_threads: int | None = None, weight_cache: bool = True,
                 runtime: str | None = None, low_memory: bool = False):
        """`num_threads`: default the CPUs this process may use (`edge.cpu.usable_cpus`);
        `weight_cache`: keep packed weights in a file (see `edge.runtime.weight_cache_file`);
        `runtime`: 'compiled', 'interpreter' or 'auto' (the default; see `edge.runtime.select_runtime`);
        `low_memory`: hold only the graphs of the stage that runs: the text encoder and decoder are
        released before each image's vision graph runs, and the vision graph after it, so the two
        stages' memory never adds up; each graph is opened again when next needed (a cost per image)."""
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise FlorenceEdgeError(f"num_threads must be a whole number of at least 1, got {num_threads!r}")
        self.manifest = mf.load_manifest(bundle_dir)
        m = self.manifest
        verify_bundle(m, cache_folder())  # before LiteRT parses a byte of it
        threads = num_threads or usable_cpus()
        self.runtime = select_runtime(runtime, m.quantization)
        cached = weight_cache and self.runtime == "compiled"
        self.low_memory = low_memory
        self._threads, self._cached = threads, cached
        self._closed = False
        self._graphs: dict = {}  # open graphs by role; opened when first needed (again after a release)
        self._vision: Signature | None = None
        self._encoders: dict[int, Signature] = {}  # by prompt length, bound on first use
        self._decoders: dict[tuple[int, int, int], DecoderSession] = {}
        if not low_memory:  # load everything now: a graph LiteRT refuses is said at load, not mid-run
            for role in mf.GRAPH_ROLES:
                self._graph(role)
            self._vision_signature()
        self.codec = TextCodec(m.root / mf.TOKENIZER_NAME, m.tokens)

    def close(self) -> None:
        """Free the native graphs and their memory now, rather than at exit; the model cannot run afterwards."""
        self._release(*mf.GRAPH_ROLES)
        self._closed = True

    @property
    def loaded(self) -> bool:
        """False once `close()` has freed the graphs."""
        return not self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise FlorenceEdgeError("this model was closed; load the bundle again")

    # ---- image ----
    def encode(self, image) -> Encoded:
        """Run the vision graph once; pass the result to `run`/`stream` for each task."""
        self._check_open()
        img = load_image(image)
        im = self.manifest.image
        pixels = pixel_values(img, (im["height"], im["width"]), im["mean"], im["std"], im["resample"],
                              im["rescale_factor"])
        if self.low_memory:
            self._release(mf.ENCODER, mf.DECODER)
        start = time.perf_counter()
        features = np.array(self._vision_signature()(pixel_values=pixels)["image_features"])
        vision_ms = (time.perf_counter() - start) * 1e3
        if self.low_memory:
            self.release_vision()
        return Encoded(features, img.size, vision_ms)

    def release_vision(self) -> None:
        """Free the vision graph (its activations are the largest block of a run's memory: about
        200 MB for base) until the next `encode` opens it again; a caller with no image left to
        encode loses nothing by it."""
        self._release(mf.VISION)

    def _release(self, *roles: str) -> None:
        """Close these graphs and forget their bound signatures (a decoder's inputs are the encoder's
        outputs: releasing the encoder releases the decoder's sessions too)."""
        if mf.VISION in roles:
            self._vision = None
        if mf.ENCODER in roles or mf.DECODER in roles:
            self._encoders, self._decoders = {}, {}
        closing = [self._graphs.pop(role) for role in roles if role in self._graphs]
        for graph in closing:
            graph.close()
        if closing:  # low-memory mode asks every frame, mostly with nothing open to free
            give_back_freed_memory()

    def _graph(self, role: str):
        if role not in self._graphs:
            m = self.manifest
            cache = weight_cache_file(m.file_sha256(role)) if self._cached else None
            self._graphs[role] = open_graph(m.graph_path(role), self._threads, m.quantization, cache, self.runtime,
                                            len(m.graph(role)["signatures"]))
        return self._graphs[role]

    def _vision_signature(self) -> Signature:
        if self._vision is None:
            self._vision = self.signature(mf.VISION, mf.VISION)
        return self._vision

    # ---- tasks ----
    def run(self, image, task: str, text: str | None = None, region=None, **options) -> Result:
        """Run one task to the end; options: num_beams, max_new_tokens, no_repeat_ngram_size."""
        for event in self.stream(image, task, text, region, **options):
            if event.result is not None:
                return event.result
        raise AssertionError("stream ended without a result")

    def stream(self, image, task: str, text: str | None = None, region=None, **options) -> Iterator[TokenEvent]:
        """Yield text pieces as tokens are decoded; with beams, as soon as every beam agrees on them.

        `text` for tasks that take text; `region` (x1, y1, x2, y2 in the image's pixels) for REGION_TO_*
        tasks, clamped to the image with a `FlorenceEdgeWarning`; another warns of a task the bundle
        says its model was not trained for."""
        key, settings = self.prepare(task, text, region, **options)
        trained = self.manifest.trained_tasks
        if trained is not None and key not in trained:
            warnings.warn(f"this model was not trained for {key} (it was for {', '.join(trained)}); "
                          "its answer may mean nothing", FlorenceEdgeWarning, stacklevel=2)
        image = image if isinstance(image, Encoded) else load_image(image)
        if region is not None:  # a region that misses the image is refused before the vision graph runs
            size = image.image_size if isinstance(image, Encoded) else image.size
            region, note = clamp_region(region, size)
            if note:
                warnings.warn(note, FlorenceEdgeWarning, stacklevel=2)
            text = region_to_loc_tokens(region, size)
        enc = image if isinstance(image, Encoded) else self.encode(image)
        timings = Timings(vision_ms=enc.vision_ms)

        start = time.perf_counter()
        session = self.encode_prompt(enc, key, text, settings)
        timings.encoder_ms = (time.perf_counter() - start) * 1e3

        start = time.perf_counter()
        choices: list[Choice] = []
        search = greedy if settings.num_beams == 1 else beam_search
        pieces = self.codec.streamer()
        for choice in search(session, settings):
            choices.append(choice)
            piece = pieces.push(choice.token)
            if piece:
                yield TokenEvent([choice.token], piece)
        timings.decode_ms = (time.perf_counter() - start) * 1e3
        timings.tokens = len(choices)
        yield TokenEvent([], "", self._result(key, choices, enc.image_size, timings))

    def _result(self, task: str, choices: list[Choice], image_size: tuple[int, int], timings: Timings) -> Result:
        tokens = [c.token for c in choices]
        parsed = self.parse(tokens, task, image_size)
        t = self.manifest.tokens
        scores = shape_scores(parsed[task], choices, (t["loc_0"], t["loc_999"]), image_size,
                              frozenset((t["bos"], t["eos"], t["pad"])))
        return Result(task, self.codec.output_text(tokens), tokens, parsed, timings, answer_score(choices), scores,
                      choices)

    def parse(self, tokens: list[int], task: str, image_size: tuple[int, int]) -> dict:
        """{task: answer} for generated tokens, as transformers' post_process_generation."""
        kind = self.manifest.tasks[task]["post_processing"]
        return parse(self.codec.decode(tokens), task, kind, image_size, self.manifest.raw["post_processing"])

    def prepare(self, task: str, text: str | None = None, region=None, **options) -> tuple[str, DecodeSettings]:
        """Check a task, its input and options against this bundle before any graph runs (one-line
        `FlorenceEdgeError`s); returns the task's key and the decoding settings."""
        self._check_open()
        key = normalize_task(task)
        check_input(self.manifest.tasks, key, text, region)
        if region is not None:
            check_region(region)
            text = region_to_loc_tokens((0, 0, 1, 1), (1, 1))  # as long as any region's tokens
        self.codec.prompt_ids(build_prompt(self.manifest.tasks, key, text), self.manifest.prompt_lens)
        settings = self.settings(**options)
        self._decoder_sizes(settings.num_beams, settings.max_new_tokens)
        return key, settings

    def settings(self, num_beams: int | None = None, max_new_tokens: int | None = None,
                 no_repeat_ngram_size: int | None = None) -> DecodeSettings:
        for name, value in (("num_beams", num_beams), ("max_new_tokens", max_new_tokens),
                            ("no_repeat_ngram_size", no_repeat_ngram_size)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise FlorenceEdgeError(f"{name} must be a whole number, not {type(value).__name__}")
        g, t = self.manifest.generation, self.manifest.tokens
        if max_new_tokens is None:  # the model's default, within what this bundle's caches hold
            max_new_tokens = min(g["max_new_tokens"], self.manifest.decoder_buckets()[-1][1])
        settings = DecodeSettings(
            max_new_tokens=max_new_tokens,
            num_beams=g["num_beams"] if num_beams is None else num_beams,
            no_repeat_ngram_size=g["no_repeat_ngram_size"] if no_repeat_ngram_size is None else no_repeat_ngram_size,
            decoder_start_id=t["decoder_start"], eos_id=t["eos"],
            forced_bos_id=g["forced_bos_token_id"], forced_eos_id=g["forced_eos_token_id"],
            early_stopping=g["early_stopping"], length_penalty=g["length_penalty"],
            loc_ids=(t["loc_0"], t["loc_999"]),
        )
        if settings.max_new_tokens < 1:
            raise FlorenceEdgeError("max_new_tokens must be at least 1")
        if settings.num_beams < 1:
            raise FlorenceEdgeError("num_beams must be at least 1")
        if settings.no_repeat_ngram_size < 0:
            raise FlorenceEdgeError("no_repeat_ngram_size must be 0 (off) or more")
        return settings

    def encode_prompt(self, enc: Encoded, task: str, text: str | None, settings: DecodeSettings) -> GrowingDecoder:
        """Run the text encoder once for a task's prompt; return a decoder session holding its K/V."""
        self._check_open()
        prompt = build_prompt(self.manifest.tasks, task, text)
        ids, mask = self.codec.prompt_ids(prompt, self.manifest.prompt_lens)
        prompt_len = ids.shape[1]
        cross = self._encoder(prompt_len)(image_features=enc.features, prompt_ids=ids, prompt_mask=mask)
        session = self._decoder(settings.num_beams, settings.max_new_tokens, prompt_len)
        session.start(cross, mask)
        return session

    def _encoder(self, prompt_len: int) -> Signature:
        if prompt_len not in self._encoders:
            key = mf.encode_signature_name(prompt_len)
            self._encoders[prompt_len] = self.signature(mf.ENCODER, key)
        return self._encoders[prompt_len]

    def _decoder_sizes(self, batch: int, max_new_tokens: int) -> list[int]:
        """The cache sizes of this batch's decoder buckets, up to the smallest that fits max_new_tokens."""
        buckets = self.manifest.decoder_buckets()
        sizes = [s for b, s in buckets if b == batch]
        if not sizes:
            batches = sorted({b for b, _ in buckets})
            raise FlorenceEdgeError(
                f"num_beams={batch} is not in this bundle (decoder batches: {batches}); convert with --beams to add it"
            )
        if max_new_tokens > sizes[-1]:
            raise FlorenceEdgeError(
                f"max_new_tokens={max_new_tokens} exceeds this bundle's largest cache ({sizes[-1]})"
            )
        return sizes[: next(i for i, s in enumerate(sizes) if s >= max_new_tokens) + 1]

    def _decoder(self, batch: int, max_new_tokens: int, prompt_len: int) -> GrowingDecoder:
        """The buckets of this batch size up to the smallest that fits max_new_tokens, bound as needed."""
        sizes = self._decoder_sizes(batch, max_new_tokens)
        return GrowingDecoder([lambda s=s: self._session(batch, s, prompt_len) for s in sizes])

    def signature(self, role: str, key: str, share: dict | None = None) -> Signature:
        """One signature of one graph, its tensors shaped as the manifest says (`share`: see runtime)."""
        return self._graph(role).signature(key, self.manifest.signature(role, key), share)

    def _session(self, batch: int, cache: int, prompt_len: int) -> DecoderSession:
        """The decoder signature of one bucket, allocated on first use and kept."""
        key = (batch, cache, prompt_len)
        if key not in self._decoders:
            # The encoder's outputs (the cross-attention K/V) become this signature's inputs.
            sig = self.signature(mf.DECODER, mf.decode_signature_name(*key), share=self._encoder(prompt_len).outputs)
            self._decoders[key] = DecoderSession(sig, self.manifest.model["decoder_layers"],
                                                 self.manifest.model["image_tokens"])
        return self._decoders[key]

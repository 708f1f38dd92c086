import subprocess
import sys
import textwrap


def test_import_and_full_run_load_no_torch_or_converters(fp32_bundle):
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from edge import Florence2
        model = Florence2({str(fp32_bundle[0])!r}, num_threads=1)
        image = np.random.RandomState(0).randint(0, 255, (48, 64, 3), dtype=np.uint8)
        result = model.run(image, "<OD>", num_beams=3, max_new_tokens=16)
        assert result.token_ids, result
        banned = [m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "converters",
                                                                 "litert_torch", "ai_edge_quantizer")]
        assert not banned, banned
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_a_closed_model_refuses_to_run_by_name(fp32_bundle):
    import numpy as np
    import pytest

    from edge import Florence2
    from edge.errors import FlorenceEdgeError

    model = Florence2(fp32_bundle[0], num_threads=1)
    image = np.zeros((32, 32, 3), np.uint8)
    encoded = model.encode(image)
    model.close()
    model.close()  # twice is harmless
    with pytest.raises(FlorenceEdgeError, match="closed"):
        model.encode(image)
    with pytest.raises(FlorenceEdgeError, match="closed"):
        model.run(encoded, "<CAPTION>")


def test_each_prompt_runs_in_the_shortest_prompt_bucket_it_fits_and_matches_generate(fp32_bundle, tiny_source):
    from converters.verify import reference_tokens, sample_images
    from edge import Florence2
    from edge.prompts import build_prompt

    model = Florence2(fp32_bundle[0], num_threads=1)
    image = sample_images()[0]
    for task, text, bucket in (("<CAPTION>", None, 16), ("<CAPTION_TO_PHRASE_GROUNDING>", "a red circle", 16),
                               ("<CAPTION_TO_PHRASE_GROUNDING>", "a red circle next to a blue square", 32)):
        ids, _ = model.codec.prompt_ids(build_prompt(model.manifest.tasks, task, text), model.manifest.prompt_lens)
        assert ids.shape[1] == bucket
        ours = model.run(image, task, text, num_beams=1, max_new_tokens=12).token_ids
        assert ours == reference_tokens(tiny_source, image, task, text, max_new_tokens=12), task
    assert sorted(model._encoders) == [16, 32]


def test_low_memory_frees_the_vision_graph_and_answers_the_same(demo_int8_bundle):
    import pytest

    from edge import manifest as mf
    from edge.demo.scenes import make_scene
    from edge.errors import FlorenceEdgeError
    from edge.model import Florence2

    images = [make_scene(seed).image for seed in (700, 701)]
    usual = Florence2(demo_int8_bundle[0], num_threads=1)
    lean = Florence2(demo_int8_bundle[0], num_threads=1, low_memory=True)
    assert mf.VISION not in lean._graphs, "low memory: nothing of the vision graph is held before an image"
    for image in images:
        for task in ("<OD>", "<CAPTION>"):
            assert lean.run(image, task).token_ids == usual.run(image, task).token_ids
        assert mf.VISION not in lean._graphs, "released after every image"
    usual.release_vision()
    assert mf.VISION not in usual._graphs
    assert usual.run(images[0], "<OD>").token_ids == lean.run(images[0], "<OD>").token_ids  # reopened on demand
    usual.close()
    with pytest.raises(FlorenceEdgeError, match="closed"):
        usual.encode(images[0])

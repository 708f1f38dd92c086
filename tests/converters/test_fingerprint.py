"""converters.fingerprint and `convert --reuse`: a bundle converting again would not change is left alone."""

import json
import shutil

from expect import cli, ends_cleanly

from converters.convert import up_to_date


def _options(bundle):
    return json.loads((bundle / "manifest.json").read_text())["conversion"]["options"]


def test_a_bundle_is_up_to_date_only_for_the_same_files_options_and_intact_contents(tiny_checkpoint, bundle_copy,
                                                                                    tmp_path):
    options = _options(bundle_copy)
    assert options["quant"] == "fp32"
    assert up_to_date(str(tiny_checkpoint), bundle_copy, options, None) is not None
    assert up_to_date(str(tiny_checkpoint), bundle_copy, {**options, "beams": 1}, None) is None
    changed = tmp_path / "changed"
    shutil.copytree(tiny_checkpoint, changed)
    config = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "note": "edited"}))
    assert up_to_date(str(changed), bundle_copy, options, None) is None
    with open(bundle_copy / "decoder.tflite", "r+b") as f:  # damaged after it was written
        f.seek(4096)
        f.write(b"\x00" * 64)
    assert up_to_date(str(tiny_checkpoint), bundle_copy, options, None) is None


def test_convert_reuse_says_so_and_leaves_every_file_as_it_was(tiny_checkpoint, bundle_copy):
    options = _options(bundle_copy)
    before = {p.name: p.stat().st_mtime_ns for p in bundle_copy.iterdir()}
    result = cli("convert", tiny_checkpoint, "-o", bundle_copy, "--quant", options["quant"], "--force", "--reuse",
                 "--cache-sizes", ",".join(map(str, options["caches"])), "--beams", options["beams"],
                 "--prompt-lens", ",".join(map(str, options["prompt_lens"])),
                 "--verify-tokens", options["verify_tokens"])
    ends_cleanly(result, 0, "")
    assert "is up to date" in result.stdout and "not converted again" in result.stdout
    assert {p.name: p.stat().st_mtime_ns for p in bundle_copy.iterdir()} == before


def test_a_hub_id_is_never_taken_as_up_to_date(bundle_copy):
    assert up_to_date("florence-community/Florence-2-base", bundle_copy, _options(bundle_copy), None) is None

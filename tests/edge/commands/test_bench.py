import json

from edge.cli import main
from edge.commands.bench import bench, format_rows


def test_bench_rows_are_well_formed(fp32_bundle):
    rows = bench(fp32_bundle[0], tasks=["OD", "<CAPTION_TO_PHRASE_GROUNDING>"], threads=[1, 2], reps=2, warmup=1,
                 new_tokens=6)
    assert [(r.task, r.threads) for r in rows] == [("<OD>", 1), ("<CAPTION_TO_PHRASE_GROUNDING>", 1), ("<OD>", 2),
                                                  ("<CAPTION_TO_PHRASE_GROUNDING>", 2)]
    for r in rows:
        assert r.new_tokens == 6 and r.quantization == "fp32"
        assert 0 < r.vision_ms and 0 < r.encoder_ms and 0 < r.decode_ms_per_token
        assert r.first_token_ms >= r.vision_ms + r.encoder_ms
        assert r.end_to_end_ms > r.first_token_ms
        assert r.tokens_per_s == 1e3 / r.decode_ms_per_token
        assert r.peak_rss_mb > 10 and r.bundle_mb > 0.5
        assert r.runtime.startswith("ai-edge-litert") and r.runtime.endswith("(compiled)")
    table = format_rows(rows, "md").splitlines()
    assert table[0].startswith("| task | thr |") and len(table) == 2 + len(rows) + 2
    assert len(format_rows(rows, "csv").splitlines()) == 1 + len(rows)
    assert json.loads(format_rows(rows, "json"))[0]["task"] == "<OD>"


def test_bench_command_prints_table_on_stdout_and_progress_on_stderr(fp32_bundle, capsys):
    assert main(["bench", "-m", str(fp32_bundle[0]), "-r", "1", "--warmup", "0", "--new-tokens", "3",
                 "-o", "json", "--runtime", "interpreter"]) == 0
    captured = capsys.readouterr()
    row = json.loads(captured.out)[0]
    assert row["new_tokens"] == 3 and row["runtime"].endswith("(interpreter)")  # the path measured is named
    assert "[florence-edge] bench" in captured.err
    assert main(["bench", "-m", str(fp32_bundle[0]), "--new-tokens", "0"]) == 2



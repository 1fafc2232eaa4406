from safecity.config import parse_config
from safecity.evaluation.bench_pipeline import bench_pipeline


def test_bench_reports_streams_sustained(short_clip):
    result = bench_pipeline(short_clip, streams=2, config=parse_config({}), analysers=["motion"], fps=5, seconds=2)
    assert len(result["fps_per_stream"]) == 2 and result["min_fps_per_stream"] > 5
    assert result["streams_sustained"] == round(result["total_fps"] / 5, 2)
    assert result["keeps_up"] and "motion_gate" in result["stage_ms"]


def test_bench_spreads_streams_over_processes(short_clip):
    result = bench_pipeline(short_clip, streams=3, config=parse_config({}), analysers=["motion"], fps=5, seconds=2,
                            workers=2)
    assert result["workers"] == 2 and len(result["fps_per_stream"]) == 3 and result["min_fps_per_stream"] > 5

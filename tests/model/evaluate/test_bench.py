"""bcir bench's tile measurements: one routine (device_tile_variants) for bench and gpu-check, on a real tissue tile."""

from __future__ import annotations

from model.evaluate.bench import bench_tile, device_tile_variants, synthetic_cc_view
from model.nn.weights import load_model
from model.registry.resolve import resolve_model


def test_only_the_asked_paths_run_each_against_eager_fp32_on_the_views_own_tissue(tmp_path):
    model = load_model(resolve_model(None))
    tile = bench_tile(synthetic_cc_view(tmp_path / "view", "small"), model, size=128)
    assert tile.shape == (1, 1, 128, 128) and tile.abs().sum() > 0  # the breast, not an empty tile
    said = []
    rows = device_tile_variants(model, "cpu", tile, repeats=1, compile_modes=("default",), cuda_graph=False,
                                only=("shipped",), log=said.append)["variants"]
    assert set(rows) == {"eager_fp32", "shipped"}  # eager fp32 is the reference and always runs; nothing compiles
    assert rows["shipped"]["mask_vs_eager_fp32"]["dice"] >= 0.5 and rows["shipped"]["speedup_vs_eager_fp32"] > 0
    assert rows["shipped"]["description"] and len(said) == 2
    every = device_tile_variants(model, "cpu", tile, repeats=1, compile_modes=(), cuda_graph=False,
                                 log=said.append)["variants"]
    assert {"eager_fp32", "eager_bf16", "folded_channels_last_fp32", "folded_channels_last_bf16", "shipped"} == set(every)

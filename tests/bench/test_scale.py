"""The scale benchmark at toy shapes: every phase of both strategies on 1 and 2 ranks, measured and extrapolated."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.scale import PHASES, STRATEGIES


@pytest.mark.timeout(600)
def test_scale_reports_every_phase_of_both_strategies_on_one_and_two_ranks(tmp_path):
    out = tmp_path / "scale.json"
    subprocess.run([sys.executable, "-m", "bench.scale", "--shapes", "toy", "--runs", "1x1,2x1,1x2,3x1", "--steps", "1",
                    "--threads", "1", "--deadline", "240", "--out", str(out)], check=True, timeout=590)
    report = json.loads(out.read_text())

    runs = {(r["strategy"], r["layers"], r["ranks"]): r for r in report["runs"]}
    assert set(runs) == {(s, layers, ranks) for s in STRATEGIES for layers, ranks in ((1, 1), (2, 1), (1, 2), (3, 1))}
    for (_strategy, _layers, ranks), run in runs.items():
        assert run["finished"], run
        assert list(run["phases"]) == list(PHASES)
        for phase in ("load", "calibrate", "train_step", "save"):
            assert run["phases"][phase]["seconds"] >= 0 and run["phases"][phase]["host_peak_bytes"] > 0, (phase, run)
        assert run["phases"]["train_step"]["step_seconds"]
        if ranks == 2:  # the ranks' own memory, beside the launching process's
            assert len(run["phases"]["train_step"]["rank_peak_bytes"]) == 2
        assert run["dtype"] == "bfloat16"  # the base's, kept by the version
    assert runs[("adaptive_svd", 1, 1)]["phases"]["decompose"]["seconds"] > 0
    assert runs[("full", 1, 1)]["phases"]["decompose"]["ran"] is False
    leak = runs[("adaptive_svd", 1, 1)]["leak"]
    assert 0 <= leak["float32"] < 1e-3 and leak["matrices"] == 7

    for strategy in STRATEGIES:
        model = report["extrapolated"]["strategies"][strategy]
        # Fitted on two layer counts where a rank count has them, checked on the run it was not fitted on.
        assert model["train_step"]["fitted_on"] == ["1x1", "1x2", "2x1"]
        assert [check["run"] for check in model["train_step"]["checks"]] == ["3x1"]
        assert model["train_step"]["sharding_measured"]
        assert "preparation_share_of_500_step_job" in model["time"]
    assert set(report["compare"]["peak_ratio_adaptive_over_full"]) == {"1x1", "2x1", "1x2", "3x1"}

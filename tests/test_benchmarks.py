"""The benchmark scripts run on the tiny checkpoint and print their tables (no timing is checked)."""

from __future__ import annotations

import sys

import pytest

from benchmarks import bench_fast_modes, bench_process, bench_streaming


def run(monkeypatch, capsys, module, *args: str) -> str:
    monkeypatch.setattr(sys, "argv", [module.__name__, *args])
    module.main()
    return capsys.readouterr().out


def test_bench_process(monkeypatch, capsys, tiny_model_dir, tmp_path):
    out = run(monkeypatch, capsys, bench_process, "--model-dir", str(tiny_model_dir), "--codes", "6",
              "--json", str(tmp_path / "r.json"))
    assert "gpt_generate" in out and "peak RSS" in out and (tmp_path / "r.json").exists()


def test_bench_streaming(monkeypatch, capsys, tiny_model_dir):
    out = run(monkeypatch, capsys, bench_streaming, "--model-dir", str(tiny_model_dir), "--codes", "12")
    lines = [line for line in out.splitlines() if line.startswith("quick_streaming=")]
    assert len(lines) == 2 and "[103, 50]" in lines[0] and "[58, 95]" in lines[1]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bench_fast_modes(monkeypatch, capsys, tiny_model_dir):
    out = run(monkeypatch, capsys, bench_fast_modes, "--model-dir", str(tiny_model_dir), "--codes", "6",
              "--steps", "2")
    rows = {line.split("  ")[0]: line for line in out.splitlines()}
    assert {"fp32", "fp32 (again)", "fp32 + steps 2", "gpt bf16", "gpt bf16 + steps 2"} <= set(rows)
    assert rows["fp32 (again)"].split()[-3:] == ["100%", "-", "0.000"]  # a second exact take, the same
    assert rows["fp32 + steps 2"].split()[-3] == "100%"  # fewer steps keep the codes

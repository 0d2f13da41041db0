"""benchmarks/gpu.py runs end to end (on the CPU here, tiny model); speed is never asserted."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from builders import run_benchmark

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.py"


def test_quick_run_on_the_cpu_prints_every_rate() -> None:
    lines = run_benchmark("gpu.py", "--quick", "--device", "cpu", "--batch-size", "4").splitlines()
    assert lines[0] == "CPU, tiny model, float32, batch 4"
    names = ["text embeddings/s", "image embeddings/s", "training samples/s"]
    for tower in ("ViT-B/32", "ViT-L/14", "SigLIP 2 base"):
        names += [f"{tower} student: text embeddings/s", f"{tower} student: image embeddings/s"]
    for name in names:
        [line] = [line for line in lines if line.strip().startswith(name)]
        assert float(line.split()[-1].replace(",", "")) > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU to run on")
def test_asking_for_a_gpu_where_there_is_none_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "no GPU here" in done.stderr

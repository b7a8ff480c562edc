"""The job modules agree with each other: the launched child modules, one reading of a job's state, one split."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

from model.data.split import reproduce_split
from model.data.study_index import build_index
from model.jobs import job as job_module
from model.jobs.estimate import count_run, pick_timing_image
from model.jobs.job import CHILD_MODULE, Job
from model.jobs.plan import plan_held_out, run_split
from model.jobs.process import child_env
from model.jobs.spec import JobSpec
from model.jobs.timing import TIMING_MODULE
from model.train.config import TrainConfig


def test_the_launched_modules_are_the_ones_with_a_main():
    """_launch starts CHILD_MODULE and _pid_alive looks for it in a process's command line: both must name the
    module that runs a job, or a live child is taken for dead (and resumed twice)."""
    for name, expected in ((CHILD_MODULE, "model.jobs.child"), (TIMING_MODULE, "model.jobs.timing")):
        module = importlib.import_module(name)
        assert module.__name__ == expected and callable(module.main)
        out = subprocess.run([sys.executable, "-m", name, "--help"], capture_output=True, text=True, timeout=120,
                             env=child_env(), check=True)
        assert f"python -m {name}" in out.stdout


def test_a_question_about_a_job_reads_its_state_once(tmp_path, monkeypatch):
    job_dir = tmp_path / "job"
    (job_dir / "run").mkdir(parents=True)
    (job_dir / "spec.json").write_text(json.dumps(JobSpec(root=str(tmp_path)).to_json()))
    (job_dir / "state.json").write_text(json.dumps({"state": "running", "pid": os.getpid()}))  # not a retrain child
    (job_dir / "run" / "checkpoint.safetensors").write_bytes(b"x")
    reads = []
    read_state = job_module.read_state
    monkeypatch.setattr(job_module, "read_state", lambda path: reads.append(path) or read_state(path))
    job = Job(job_dir)
    assert job.resumable() and len(reads) == 1
    reads.clear()
    status = job.status()
    assert status.interrupted and not status.paused and not status.alive and job.resumable(status) and len(reads) == 1


def test_the_run_split_is_the_split_the_training_makes(demo_root):
    index = build_index(demo_root, workers=1)
    config = TrainConfig(working_spacing_mm=0.2, tile=64, device="cpu", views=("CC", "MLO"), split_seed=3)
    split = run_split(index, config)
    training = reproduce_split(index, config.to_json())
    assert (split.train_patients, split.val_patients) == (training.train, training.val)
    assert {i.patient_id for i in split.val} == set(training.val) and split.train and split.val
    assert not {i.patient_id for i in split.train} & {i.patient_id for i in split.val}
    # a split passed in gives what the functions compute themselves
    plan = plan_held_out(index, config)
    assert plan_held_out(index, config, split=split) == plan
    assert count_run(index, config, gate_images=plan["images"], split=split) == count_run(
        index, config, gate_images=plan["images"])
    assert pick_timing_image(index, config, split=split) == pick_timing_image(index, config)

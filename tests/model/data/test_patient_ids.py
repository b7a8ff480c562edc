"""No patient ID in the files a site shares (issue 11, item 8): model cards, split.json, registry entries, eval
reports and ``bcir model-info --json`` name patients by the site's salted hashes, and the same site can still tell
its models' training patients apart (the held-out rule, a held-out folder checked against the training patients);
a card made at another site (the bundled model) is checked by reproducing its split from the seed."""

from __future__ import annotations

import copy
import dataclasses
import json
import multiprocessing
import shutil
import stat
from pathlib import Path

import pytest

from model.cli.main import main
from model.evaluate.evaluation import evaluate, held_out_patients
from model.registry.versions import ModelRegistry
from model.evaluate.report import write_report
from model.data import split as msplit  # names used as msplit.X: the file runs against older code too (to fail there)
from model.data.split import split_patients
from model.data.study_index import build_index
from model.errors import DataError
from model.train.config import TrainConfig
from model.train.loop import train
from model.data.selection import select_images
from model.nn.card import TrainingRecord
from model.nn.weights import bundled_model_path, read_card, save_model

TINY = dict(working_spacing_mm=0.2, tile=64, augment_factor=2, micro_batch=4, batch_size=8, device="cpu",
            normal_ratio=0.5, max_epochs=1, max_batches_per_epoch=2, early_stop_delta=0.0)


def _patients(root) -> set[str]:
    return {i.patient_id for i in build_index(root, workers=1).images}


def _texts(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text(errors="replace") for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix in (".json", ".md")}


def _naming(texts: dict[str, str], patients) -> list[tuple[str, str]]:
    return [(name, p) for name, text in texts.items() for p in patients if p in text]


@pytest.fixture
def run(demo_root, tmp_path) -> Path:
    """A one-epoch training run on the six demo patients; its folder."""
    out = tmp_path / "run"
    result = train(demo_root, out, TrainConfig(**TINY), cache_dir=tmp_path / "cache")
    assert result.model_path is not None
    return out


def test_a_training_run_writes_no_patient_id_where_it_may_be_shared(run, demo_root):
    patients = _patients(demo_root)
    texts = {k: v for k, v in _texts(run).items() if k in ("model.json", "best.json", "split.json")}
    assert set(texts) == {"model.json", "best.json", "split.json"} and not _naming(texts, patients)
    key = msplit.site_key(create=False)
    assert key is not None and stat.S_IMODE(msplit.site_key_path().stat().st_mode) == 0o600  # made by the run, private
    section = json.loads(texts["model.json"])["training"]["patients"]
    split = json.loads(texts["split.json"])
    assert section["scheme"] == split["scheme"] == msplit.PATIENT_SCHEME and section["site"] == key.id
    # the hashes are this site's: the same split as the seed makes, hashed with the site key
    index = build_index(demo_root, workers=1)
    expected = split_patients(msplit.labels_of(select_images(index, ("CC",))[0]), val_fraction=0.3, seed=0)
    assert (section["train"], section["val"]) == (key.hashes(expected.train), key.hashes(expected.val))
    assert (split["train"], split["val"], split["seed"]) == (section["train"], section["val"], 0)
    assert msplit.load_split(run / "split.json", index, TrainConfig(**TINY).to_json()) == expected  # what resume reads


def test_the_site_still_tells_its_models_training_patients(run, demo_root, tmp_path):
    card = read_card(run / "model.safetensors")
    index = build_index(demo_root, workers=1)
    expected = split_patients(msplit.labels_of(select_images(index, ("CC",))[0]), val_fraction=0.3, seed=0)
    held = held_out_patients(index, card)  # the training folder: the card's training patients left out
    assert held.rule == "training-card" and held.patients == sorted(expected.val)
    assert "reproduced" not in held.description  # read with the site key

    # another folder of this site sharing patients with the training data: the overlap is found
    other = tmp_path / "other"
    shutil.copytree(demo_root, other)
    next(other.rglob("*.dcm")).unlink()  # another file list: another fingerprint
    held = held_out_patients(build_index(other, workers=1), card)
    assert held.rule == "all-patients"
    assert any(n.startswith(f"{len(expected.train)} patients of this folder also appear among the model's training")
               for n in held.notes), held.notes


def test_another_sites_card_is_checked_by_reproducing_its_split(run, demo_root, tmp_path):
    card = read_card(run / "model.safetensors")
    index = build_index(demo_root, workers=1)
    expected = split_patients(msplit.labels_of(select_images(index, ("CC",))[0]), val_fraction=0.3, seed=0)
    msplit.site_key_path().rename(tmp_path / "the-training-site-key")  # this is now another site
    assert msplit.site_key(create=False) is None

    held = held_out_patients(index, card)
    assert held.rule == "training-card" and held.patients == sorted(expected.val)
    assert "reproduced from its seed" in held.description

    seed = next(s for s in range(1, 50) if split_patients(msplit.labels_of(select_images(index, ("CC",))[0]),
                                                            val_fraction=0.3, seed=s) != expected)
    training = card.training.to_json()  # a split that the seed no longer reproduces is not trusted
    training["config"] = {**training["config"], "split_seed": seed}
    moved = dataclasses.replace(card, training=TrainingRecord.parse(training))
    held = held_out_patients(index, moved)
    assert held.patients == sorted(_patients(demo_root)) and "training patients unknown" in held.notes[0]
    assert "differs from the recorded one" in held.description

    other = tmp_path / "other"
    shutil.copytree(demo_root, other)
    next(other.rglob("*.dcm")).unlink()
    held = held_out_patients(build_index(other, workers=1), card)
    assert any("recorded at another site" in n for n in held.notes)


def test_the_bundled_card_names_no_patient_and_can_be_checked_on_its_folder():
    training = read_card(bundled_model_path()).training
    assert "train_patients" not in training.rest and "val_patients" not in training.rest
    section = training.patients
    assert section["scheme"] == msplit.PATIENT_SCHEME and section["site"] is None and "train" not in section
    assert (section["train_count"], section["val_count"]) == (56, 24) and len(section["split_digest"]) == 16
    assert training.config["split_seed"] == 0 and training.data_fingerprint  # what reproduction needs


def _old_card_model(disc_model, index, tmp_path) -> Path:
    """A model whose card an older version wrote: plain patient IDs."""
    present = sorted({i.patient_id for i in index.images})
    card = disc_model.card.to_json()  # a plain dict, as an older version wrote it
    card["model_version"] = "older-card"
    card["training"] = {"data": "demo", "data_fingerprint": "0123456789abcdef", "train_patients": present[:4],
                        "val_patients": present[4:], "metrics": {}}
    return save_model(disc_model.net, card, tmp_path / "older.safetensors")


def test_an_older_card_with_ids_still_works_and_is_shown_and_copied_hashed(disc_model, demo_root, tmp_path, capsys):
    index = build_index(demo_root, workers=1)
    present = sorted({i.patient_id for i in index.images})
    path = _old_card_model(disc_model, index, tmp_path)
    held = held_out_patients(index, read_card(path))  # another folder by fingerprint: overlap found by ID
    assert any(n.startswith("4 ") and "also appear among the model's training patients" in n for n in held.notes)

    assert main(["model-info", "--weights", str(path), "--json"]) == 0
    shown = capsys.readouterr().out
    assert not [p for p in present if p in shown]
    assert json.loads(shown)["card"]["training"]["patients"]["train"] == msplit.site_key().hashes(present[:4])

    entry = ModelRegistry().add(path)  # the registry's copy holds hashes, and checks still work from it
    copied = _texts(entry.weights.parent)
    assert not _naming(copied, present) and entry.training_data["train_patients"] == 4
    held = held_out_patients(index, read_card(entry.weights))
    assert any(n.startswith("4 ") and "also appear among the model's training patients" in n for n in held.notes)
    assert main(["models", "show", entry.version, "--json"]) == 0
    assert not [p for p in present if p in capsys.readouterr().out]


def test_an_older_gate_is_hashed_when_added_to_the_registry(disc_model, demo_root, tmp_path):
    index = build_index(demo_root, workers=1)
    present = sorted({i.patient_id for i in index.images})
    path = _old_card_model(disc_model, index, tmp_path)
    gate = {"rule": "validation-split", "patients": present[:2], "rows": [{"model": "new", "patients": present[:2]}],
            "notes": [f"new: 1 requested patients are not in the folder: {present[5]}", "kept"]}
    entry = ModelRegistry().add(path, info={"gate": gate})
    assert not _naming(_texts(entry.weights.parent), present)
    assert entry.gate["patients"] == entry.gate["rows"][0]["patients"] == msplit.site_key().hashes(present[:2])
    assert entry.gate["notes"] == ["kept"]


def test_an_eval_report_folder_names_no_patient_and_no_path(disc_model, demo_root, tmp_path):
    index = build_index(demo_root, workers=1)
    present = sorted({i.patient_id for i in index.images})
    report = evaluate(index, disc_model, device="cpu", bootstrap=50, patients=present + ["P_99999"])
    assert any("not in the folder" in n for n in report.notes)
    out = tmp_path / "report"
    write_report(report, out)
    texts = _texts(out)
    assert set(texts) >= {"report.json", "report.md"} and not _naming(texts, present + ["P_99999"])
    data = json.loads(texts["report.json"])
    key = msplit.site_key()
    assert data["patient_key"] == key.id and data["per_image"]
    assert [r["patient"] for r in data["per_image"]] == [key.hash(r["patient_id"]) for r in report.per_image]
    assert not any("path" in r for r in data["per_image"] + data["per_abnormality"]) and "errors" not in data
    assert report.to_json()["per_image"][0]["patient_id"] in present  # the site's own terminal output keeps them


def test_an_older_split_json_with_ids_still_resumes(demo_root, tmp_path):
    index = build_index(demo_root, workers=1)
    split = split_patients(msplit.labels_of(select_images(index, ("CC",))[0]), seed=3)
    old = tmp_path / "split.json"
    old.write_text(json.dumps(split.to_json()))  # plain IDs, as an older version wrote it
    assert msplit.load_split(old, index, {}) == split


def _make_key(queue):
    queue.put(msplit.site_key().id)


def test_processes_making_the_site_key_at_once_end_with_one_key():
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_make_key, args=(queue,)) for _ in range(4)]
    for w in workers:
        w.start()
    ids = {queue.get(timeout=120) for _ in workers}
    for w in workers:
        w.join(timeout=60)
    assert ids == {msplit.site_key(create=False).id}


def test_a_damaged_site_key_is_said_not_replaced():
    msplit.site_key()
    msplit.site_key_path().write_text("not a key\n")
    with pytest.raises(DataError, match="site key .* is damaged"):
        msplit.site_key()
    assert msplit.site_key_path().read_text() == "not a key\n"
    msplit.site_key_path().write_text("00ff\n")  # hex digits, but too few for a key
    with pytest.raises(DataError, match="site key .* is damaged"):
        msplit.site_key()

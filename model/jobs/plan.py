"""Before a run: the patient split the training will make, and the held-out set the safety gate will use."""

from __future__ import annotations

from dataclasses import dataclass

from model.evaluate.held_out import held_out_warnings


@dataclass(frozen=True)
class RunSplit:
    """The images a run of this config trains and validates on, split by patient as model.train.loop.train splits
    them (model.data.split: the same labels, seed and fraction)."""

    train: list  # IndexedImage
    val: list
    val_patients: tuple[str, ...]
    train_patients: tuple[str, ...]


def run_split(index, config) -> RunSplit:
    """The training run's patient split of ``index`` under ``config`` (views, val_fraction, split_seed)."""
    from model.data.split import labels_of, split_patients
    from model.data.selection import select_images

    images, _ = select_images(index, tuple(config.views))
    split = split_patients(labels_of(images), val_fraction=config.val_fraction, seed=config.split_seed)
    train, val = set(split.train), set(split.val)
    return RunSplit(train=[i for i in images if i.patient_id in train], val=[i for i in images if i.patient_id in val],
                    val_patients=split.val, train_patients=split.train)


def plan_held_out(index, config, *, holdout_index=None, gate_views: tuple[str, ...] = ("CC",),
                  split: RunSplit | None = None) -> dict:
    """Before a run: the held-out set the gate will use (the same patient split the training will make, or every
    patient of the locked hold-out folder), its size, and :func:`held_out_warnings` for it. ``split``:
    :func:`run_split` of ``index`` and ``config``, when the caller has it already."""
    views = {v.upper() for v in gate_views}
    if holdout_index is not None:
        pool, rule = holdout_index.images, "holdout-folder"
        patients = sorted({i.patient_id for i in pool})
        train_patients = None
    else:
        split = split if split is not None else run_split(index, config)
        patients, train_patients, rule = list(split.val_patients), len(split.train_patients), "validation-split"
        pool = [i for i in index.images if i.patient_id in set(patients)]
    images = lesions = malignant = benign = 0
    for image in pool:  # as model.evaluate.evaluation.evaluate picks the images and their usable abnormalities
        if image.patient_id not in patients or (image.view or "").upper() not in views or not image.gt_known:
            continue
        usable = [a for a in image.abnormalities if not a.problem and a.mask_path]
        if image.abnormalities and not usable:
            continue
        images += 1
        lesions += len(usable)
        malignant += sum(a.malignant for a in usable)
        benign += sum(not a.malignant for a in usable)
    return {"rule": rule, "patients": len(patients), "train_patients": train_patients, "images": images,
            "lesions": lesions, "malignant": malignant, "benign": benign, "views": sorted(views),
            "warnings": held_out_warnings(len(patients), lesions, malignant, benign)}


__all__ = ["RunSplit", "plan_held_out", "run_split"]

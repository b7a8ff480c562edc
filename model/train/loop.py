"""Training the B-Cir U-Net: the paper's optimisation, resumable, cancellable, on one machine or many.

One loop serves the command line (``bcir train``), the GUI's retrain dialog and
``torchrun``. Progress leaves through :class:`TrainEvent` callbacks; stopping
is a flag checked every batch. Every epoch ends with one atomic checkpoint
(model, optimiser and loop state in a single safetensors file), so a run killed
at any moment resumes from its last complete epoch with ``resume=True``. A
cancelled or killed run never leaves a half-written model: models are written
atomically, and only when an epoch completes; what a killed run leaves behind
(temp files, a model pair between its weights and its card) is cleaned up or
completed when the next run starts in that folder. The card and ``split.json``
name the patients by the site's hashes, never by ID (:mod:`model.data.split`).

Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) the same loop runs with
DistributedDataParallel (gloo on CPU, NCCL on CUDA) and a DistributedSampler;
only rank 0 writes.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from model.data.preprocess import PreprocessConfig
from model.data.selection import select_images
from model.data.split import labels_of, load_split, patients_section, site_key, split_patients
from model.data.study_index import build_index
from model.errors import Cancelled, DataError
from model.fileio import atomic_write_json, clean_stale_parts
from model.nn.network import BCirUNet
from model.nn.card import ModelCard, new_card
from model.nn.weights import load_model, save_model, settle_pending_cards
from model.train.cache import train_cache_dir
from model.train.checkpoint import load_checkpoint, save_checkpoint
from model.train.config import TrainConfig, TrainEvent, TrainResult
from model.train.data import RoiDataset, build_samples, prepare_all
from model.train.distributed import average_buffers, dist_env, init_distributed, weight_digest
from model.train.loss import class_weights, compute_loss, epoch_lr
from model.train.validation import validate


def _hard_negatives(parent, train_images, config: TrainConfig, out: Path, *, resume: bool, device, emit) -> list:
    """The starting model's false positives on the training images (model.train.hard_negatives): read back from the
    run folder when resuming a run that mined them, else mined (each rank its share under torchrun) and kept there."""
    from model.train.hard_negatives import (MINED_FILE, broadcast_mined, gather_mined, mine_hard_negatives, mined_record,
                                            read_mined)

    rank, world, _ = dist_env()
    per_image = config.hard_negatives_per_image
    mined = read_mined(out / MINED_FILE, parent, train_images, per_image) if resume and rank == 0 else None
    if world > 1:  # rank 0's record decides for all: the run folder may be on rank 0's machine only
        mined = broadcast_mined(mined)
    if mined is not None:
        emit(TrainEvent("prepare", message=f"the starting model's false positives, as mined before ({MINED_FILE})"))
        return mined

    def mine_progress(done, total):
        emit(TrainEvent("prepare", batch=done, batches=total, message="finding the starting model's false positives"))

    mined = mine_hard_negatives(train_images, parent, per_image=per_image, spacing_mm=config.working_spacing_mm,
                                device=str(device), progress=mine_progress, shard=(rank, world))
    if world > 1:
        mined = gather_mined(mined)
    if rank == 0:
        atomic_write_json(out / MINED_FILE, mined_record(parent, train_images, per_image, mined))
    return mined


def train(root: str | Path, out_dir: str | Path, config: TrainConfig = TrainConfig(), *,
          resume: bool = False, callback: Callable[[TrainEvent], None] | None = None,
          should_stop: Callable[[], bool] | None = None, cache_dir: str | Path | None = None) -> TrainResult:
    """Train on the labelled studies under ``root``; write the run into ``out_dir``."""
    from model.nn.runtime import resolve_device

    out = Path(out_dir)
    emit = callback or (lambda e: None)
    device = resolve_device(config.device)
    distributed = init_distributed(device)
    rank, world, local_rank = dist_env()
    if distributed and device.type == "cuda":
        device = torch.device(f"cuda:{local_rank}")
        torch.cuda.set_device(device)
    is_main = rank == 0
    cache = Path(cache_dir) if cache_dir else train_cache_dir()
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        # what a run killed mid-write left here: temp files no live process writes, a model pair half renamed
        for folder in (out, cache):
            clean_stale_parts(folder)
        settle_pending_cards(out)
    checkpoint_path = out / "checkpoint.safetensors"
    if resume and (out / "config.json").is_file():
        config = TrainConfig.from_json(json.loads((out / "config.json").read_text()))  # a resumed run keeps its settings

    config.check_start()
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    preprocess = PreprocessConfig(working_spacing_mm=config.working_spacing_mm)

    # data: index, selection, split, preparation (cached)
    emit(TrainEvent("prepare", message="indexing"))
    index = build_index(root)
    images, report = select_images(index, config.views)
    from model.evaluate.evaluation import dataset_fingerprint

    fingerprint = dataset_fingerprint(index)
    if resume and (out / "split.json").is_file():
        split = load_split(out / "split.json", index, config.to_json())  # hashed patients: read with the site key
    else:
        split = split_patients(labels_of(images), val_fraction=config.val_fraction, seed=config.split_seed)

    def prepare_progress(done, total):
        emit(TrainEvent("prepare", batch=done, batches=total, message="preprocessing images"))

    train_images = prepare_all([i for i in images if i.patient_id in set(split.train)], preprocess, config.tile, cache, report, prepare_progress)
    val_images = prepare_all([i for i in images if i.patient_id in set(split.val)], preprocess, config.tile, cache, report, prepare_progress)
    train_samples = build_samples(train_images, config.normal_ratio, seed=config.seed)
    val_samples = build_samples(val_images, config.normal_ratio, seed=config.seed + 1)
    if not train_samples:
        raise DataError(f"no usable training samples under {root}: {report.images_used} images, none with lesions or normal tissue")
    parent = load_model(config.init_weights) if config.init_weights else None
    hard_negatives = 0
    if parent is not None and config.hard_negatives_per_image:
        mined = _hard_negatives(parent, train_images, config, out, resume=resume, device=device, emit=emit)
        train_samples += mined
        hard_negatives = len(mined)
        emit(TrainEvent("prepare", message=f"{hard_negatives} hard negatives from {len(train_images)} training images",
                        metrics={"hard_negatives": hard_negatives}))
    weights = class_weights([s.malignant for s in train_samples if s.lesion])  # the head's, benign and malignant
    train_set = RoiDataset(train_images, train_samples, config.tile, config.augment_factor)
    val_set = RoiDataset(val_images, val_samples, config.tile, augment_factor=1)

    patients = None  # the card's record of the split: hashed patients, never their IDs (model.data.split)
    if is_main:
        key = site_key()
        patients = patients_section(split, index, key)
        atomic_write_json(out / "config.json", config.to_json())
        split.save(out / "split.json", index, key)
        atomic_write_json(out / "data_report.json", report.to_json())  # paths of left-out files: stays at the site

    # network and optimiser
    parent_card = None
    if parent is not None:
        net, parent_card = parent.net, parent.card
    else:
        net = BCirUNet(dropout=config.dropout)
    net = net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    history: list[dict] = []
    start_epoch, best_dice = 1, -1.0
    if resume and checkpoint_path.is_file():
        state = load_checkpoint(checkpoint_path, net, optimizer)
        start_epoch, history, best_dice = state["epoch"] + 1, state["history"], state["best_dice"]
        emit(TrainEvent("prepare", epoch=state["epoch"], message=f"resumed after epoch {state['epoch']}"))
    model_net = net
    if distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)

    from torch.utils.data.distributed import DistributedSampler

    micro = config.micro_batch
    accumulation = config.accumulation
    val_loader = DataLoader(val_set, batch_size=micro, shuffle=False)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if config.bf16 else torch.autocast(device.type, enabled=False))

    def card_for(metrics: dict) -> ModelCard:
        training = {
            "data": f"{root}", "data_fingerprint": fingerprint, "patients": patients,
            "data_report": {k: v for k, v in report.to_json().items() if k != "left_out"}, "config": config.to_json(),
            "hard_negatives": hard_negatives,
            "metrics": metrics, "history": history, "date": _dt.date.today().isoformat(), "world_size": world,
        }
        return new_card(model_net, preprocess=preprocess, tile_size=config.tile, training=training,
                        parent=parent_card.version if parent_card is not None else None)

    cancelled = stopped_early = False
    epoch = start_epoch - 1
    timer = time.perf_counter()
    batches_done_total = 0
    try:
        for epoch in range(start_epoch, config.max_epochs + 1):
            sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=config.seed) if distributed else None
            generator = torch.Generator().manual_seed(config.seed * 1000 + epoch)
            if sampler:
                sampler.set_epoch(epoch)
            loader = DataLoader(train_set, batch_size=micro, sampler=sampler, shuffle=sampler is None, generator=generator, drop_last=False)
            batches = len(loader)
            if config.max_batches_per_epoch:
                batches = min(batches, config.max_batches_per_epoch)
            emit(TrainEvent("epoch_start", epoch=epoch, epochs=config.max_epochs, batches=batches))
            for group in optimizer.param_groups:  # from the epoch alone, so a resumed run goes on where it was
                group["lr"] = epoch_lr(config, epoch)
            net.train()
            optimizer.zero_grad(set_to_none=True)
            running, seen = 0.0, 0
            epoch_start = time.perf_counter()
            for b, (images, masks, malignant, lesion) in enumerate(loader, 1):
                if b > batches:
                    break
                if should_stop and should_stop():
                    raise Cancelled()
                images, masks, malignant = images.to(device), masks.to(device), malignant.to(device)
                last_of_step = b % accumulation == 0 or b == batches
                sync = (not distributed) or last_of_step
                context = net.no_sync() if (distributed and not sync) else nullcontext()
                with context:
                    with autocast:
                        mask_logits, malignancy_logits = net(images)
                    loss = compute_loss(config, mask_logits, malignancy_logits, masks, malignant, lesion.to(device), weights)
                    (loss / accumulation).backward()
                if last_of_step:
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                running += float(loss) * len(images)
                seen += len(images)
                batches_done_total += 1
                elapsed = time.perf_counter() - epoch_start
                eta = elapsed / b * (batches - b) + (config.max_epochs - epoch) * elapsed / b * batches
                emit(TrainEvent("batch", epoch=epoch, epochs=config.max_epochs, batch=b, batches=batches,
                                loss=running / seen, eta_s=eta))
            train_loss = running / max(seen, 1)
            if distributed:
                import torch.distributed as dist

                t = torch.tensor([running, float(seen)], dtype=torch.float64, device=device)
                dist.all_reduce(t)
                train_loss = float(t[0] / max(t[1], 1))
                average_buffers(model_net, world)
            metrics = validate(model_net, val_loader, config, device, weights) if len(val_set) else {}
            entry = {"epoch": epoch, "train_loss": train_loss, **metrics, "seconds": time.perf_counter() - epoch_start}
            history.append(entry)
            improved = metrics.get("val_dice", -1.0) > best_dice
            if improved:
                best_dice = metrics.get("val_dice", best_dice)
            if is_main:
                if improved:
                    save_model(model_net, card_for({**metrics, "epoch": epoch}), out / "best.safetensors")
                save_checkpoint(checkpoint_path, model_net, optimizer,
                                 {"epoch": epoch, "history": history, "best_dice": best_dice, "config": config.to_json()})
                atomic_write_json(out / "history.json", history)
            emit(TrainEvent("epoch_end", epoch=epoch, epochs=config.max_epochs, loss=train_loss, metrics=entry))
            spent = time.perf_counter() - timer
            if config.max_minutes and spent + entry["seconds"] > config.max_minutes * 60 and epoch < config.max_epochs:
                stopped_early = True
                emit(TrainEvent("early_stop", epoch=epoch, message=f"time budget of {config.max_minutes:g} min reached"))
                break
            if len(history) >= 2 and abs(history[-1]["train_loss"] - history[-2]["train_loss"]) < config.early_stop_delta:
                stopped_early = True
                emit(TrainEvent("early_stop", epoch=epoch, message="epoch loss changed by less than "
                                f"{config.early_stop_delta}"))
                break
    except Cancelled:
        cancelled = True
        emit(TrainEvent("cancelled", epoch=epoch, message="cancelled; the last complete epoch's checkpoint is kept"))

    digests = [weight_digest(model_net)]
    if distributed:
        import torch.distributed as dist

        gathered: list = [None] * world
        dist.all_gather_object(gathered, digests[0])
        digests = gathered
    model_path = best_path = None
    if not cancelled and history and is_main:
        final_metrics = {k: v for k, v in history[-1].items() if k != "seconds"}
        model_path = save_model(model_net, card_for(final_metrics), out / "model.safetensors")
        best_path = out / "best.safetensors" if (out / "best.safetensors").is_file() else None
        summary = {"epochs_done": len(history), "stopped_early": stopped_early, "world_size": world,
                   "rank_weight_digests": digests, "seconds": time.perf_counter() - timer}
        atomic_write_json(out / "run.json", summary)
        emit(TrainEvent("done", epoch=epoch, metrics=final_metrics, message=str(model_path)))
    if distributed:
        import torch.distributed as dist

        dist.barrier()
    return TrainResult(out, model_path, best_path, len(history), history, cancelled, stopped_early, digests)


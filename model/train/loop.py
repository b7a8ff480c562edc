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

import dataclasses
import datetime as _dt
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors
from torch.utils.data import DataLoader

from model.fileio import atomic_write_bytes, atomic_write_json, clean_stale_parts, user_cache_dir
from model.nn.network import BCirUNet
from model.data.preprocess import PreprocessConfig
from model.data.split import labels_of, load_split, patients_section, site_key, split_patients
from model.data.study_index import build_index
from model.train.data import RoiDataset, build_samples, prepare_all, select_images
from model.nn.weights import load_model, new_card, save_model, settle_pending_cards


@dataclass
class TrainConfig:
    """Every setting of a training run; saved with the run (``config.json``) and in the model card."""

    # data
    views: tuple[str, ...] = ("CC",)  # the paper uses CC only; add "MLO" to train on both
    working_spacing_mm: float = 0.1
    tile: int = 1024  # ROI size at the working spacing (the paper: 1024)
    augment_factor: int = 40  # the paper's x40 expansion, virtual
    normal_ratio: float = 0.25  # lesion-free tiles per lesion tile (ours, beyond the paper)
    val_fraction: float = 0.3  # the paper's 70/30, by patient
    split_seed: int = 0
    # optimisation (the paper)
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 64  # reached with gradient accumulation over micro-batches
    micro_batch: int = 8
    max_epochs: int = 200
    early_stop_delta: float = 1e-3  # stop when the epoch loss changes by less than this
    # loss
    dice_weight: float = 1.0  # ours: soft Dice added to the paper's BCE; 0 switches it off
    malignancy_weight: float = 0.5  # BCE on the malignancy head
    # network
    dropout: float = 0.1
    # run
    seed: int = 0
    device: str = "auto"
    bf16: bool = False  # bf16 autocast for training on CPUs with native bf16
    init_weights: str | None = None  # fine-tune from this model (its card becomes the parent)
    max_batches_per_epoch: int | None = None  # cap for quick runs and tests
    max_minutes: float | None = None  # stop after the last epoch that fits this wall-clock budget

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "views" in values:
            values["views"] = tuple(values["views"])
        return cls(**values)

    @property
    def accumulation(self) -> int:
        return max(1, math.ceil(self.batch_size / self.micro_batch))


@dataclass
class TrainEvent:
    kind: str  # "prepare", "epoch_start", "batch", "epoch_end", "checkpoint", "done", "cancelled", "early_stop"
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    loss: float | None = None
    metrics: dict = field(default_factory=dict)
    eta_s: float | None = None
    message: str = ""


@dataclass
class TrainResult:
    run_dir: Path
    model_path: Path | None
    best_path: Path | None
    epochs_done: int
    history: list[dict]
    cancelled: bool
    stopped_early: bool
    rank_weight_digests: list[str]


class Cancelled(Exception):
    pass


# ---------------------------------------------------------------------------
# distributed helpers


def _dist_env() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def _init_distributed(device: torch.device) -> bool:
    rank, world, _ = _dist_env()
    if world <= 1:
        return False
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def _average_buffers(net: torch.nn.Module, world: int) -> None:
    """BatchNorm statistics are updated by each rank's own batches; average them so every rank holds the same model."""
    import torch.distributed as dist

    for buffer in net.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer.div_(world)
        else:
            dist.broadcast(buffer, src=0)


def _weight_digest(net: torch.nn.Module) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------
# loss and metrics


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(1, 2, 3))
    total = prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


def compute_loss(config: TrainConfig, mask_logits, malignancy_logits, masks, malignant) -> torch.Tensor:
    loss = F.binary_cross_entropy_with_logits(mask_logits.float(), masks)
    if config.dice_weight:
        loss = loss + config.dice_weight * soft_dice_loss(mask_logits.float(), masks)
    if config.malignancy_weight:
        loss = loss + config.malignancy_weight * F.binary_cross_entropy_with_logits(malignancy_logits.float(), malignant)
    return loss


# ---------------------------------------------------------------------------
# checkpoints: one safetensors file holds model, optimiser and (in its metadata) the loop state


def _save_checkpoint(path: Path, net: BCirUNet, optimizer: torch.optim.Optimizer, state: dict) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    opt_state = optimizer.state_dict()
    for pid, values in opt_state["state"].items():
        for name, value in values.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optim.{pid}.{name}"] = t.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"state": json.dumps(state), "param_groups": json.dumps(opt_state["param_groups"])}
    atomic_write_bytes(path, save_safetensors(tensors, metadata=meta))


def _load_checkpoint(path: Path, net: BCirUNet, optimizer: torch.optim.Optimizer) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state: dict = {"state": {}, "param_groups": json.loads(meta["param_groups"])}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            opt_state["state"].setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict(opt_state)
    torch.set_rng_state(tensors["rng.torch"])
    return json.loads(meta["state"])


# ---------------------------------------------------------------------------
# the run


def _validate(net, loader, config, device) -> dict:
    net.eval()
    losses, inter, total = [], 0.0, 0.0
    scores, labels = [], []
    with torch.no_grad():
        for images, masks, malignant, lesion in loader:
            images, masks, malignant = images.to(device), masks.to(device), malignant.to(device)
            mask_logits, malignancy_logits = net(images)
            losses.append(float(compute_loss(config, mask_logits, malignancy_logits, masks, malignant)) * len(images))
            pred = (mask_logits > 0).float()
            inter += float((pred * masks).sum())
            total += float(pred.sum() + masks.sum())
            keep = lesion.bool()
            scores += torch.sigmoid(malignancy_logits.float()).cpu()[keep].tolist()
            labels += malignant.cpu()[keep].tolist()
    net.train()
    n = max(1, len(loader.dataset))
    metrics = {"val_loss": sum(losses) / n, "val_dice": (2 * inter / total) if total else 1.0}
    if len(set(labels)) == 2:
        from model.evaluate.metrics import roc_auc

        metrics["val_auc"] = float(roc_auc(np.array(labels), np.array(scores)))
    return metrics


def train(root: str | Path, out_dir: str | Path, config: TrainConfig = TrainConfig(), *,
          resume: bool = False, callback: Callable[[TrainEvent], None] | None = None,
          should_stop: Callable[[], bool] | None = None, cache_dir: str | Path | None = None) -> TrainResult:
    """Train on the labelled studies under ``root``; write the run into ``out_dir``."""
    from model.nn.runtime import resolve_device

    out = Path(out_dir)
    emit = callback or (lambda e: None)
    device = resolve_device(config.device)
    distributed = _init_distributed(device)
    rank, world, local_rank = _dist_env()
    if distributed and device.type == "cuda":
        device = torch.device(f"cuda:{local_rank}")
        torch.cuda.set_device(device)
    is_main = rank == 0
    cache = Path(cache_dir) if cache_dir else user_cache_dir() / "train-cache"
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        # what a run killed mid-write left here: temp files no live process writes, a model pair half renamed
        for folder in (out, cache):
            clean_stale_parts(folder)
        settle_pending_cards(out)
    checkpoint_path = out / "checkpoint.safetensors"
    if resume and (out / "config.json").is_file():
        config = TrainConfig.from_json(json.loads((out / "config.json").read_text()))  # a resumed run keeps its settings

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
        raise ValueError(f"no usable training samples under {root}: {report.images_used} images, none with lesions or normal tissue")
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
    if config.init_weights:
        parent = load_model(config.init_weights)
        net, parent_card = parent.net, parent.card
    else:
        net = BCirUNet(dropout=config.dropout)
    net = net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    history: list[dict] = []
    start_epoch, best_dice = 1, -1.0
    if resume and checkpoint_path.is_file():
        state = _load_checkpoint(checkpoint_path, net, optimizer)
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

    def card_for(metrics: dict) -> dict:
        training = {
            "data": f"{root}", "data_fingerprint": fingerprint, "patients": patients,
            "data_report": {k: v for k, v in report.to_json().items() if k != "left_out"}, "config": config.to_json(),
            "metrics": metrics, "history": history, "date": _dt.date.today().isoformat(), "world_size": world,
        }
        return new_card(model_net, preprocess=preprocess, tile_size=config.tile, training=training,
                        parent=parent_card["model_version"] if parent_card else None)

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
            net.train()
            optimizer.zero_grad(set_to_none=True)
            running, seen = 0.0, 0
            epoch_start = time.perf_counter()
            for b, (images, masks, malignant, _lesion) in enumerate(loader, 1):
                if b > batches:
                    break
                if should_stop and should_stop():
                    raise Cancelled()
                images, masks, malignant = images.to(device), masks.to(device), malignant.to(device)
                last_of_step = b % accumulation == 0 or b == batches
                sync = (not distributed) or last_of_step
                context = net.no_sync() if (distributed and not sync) else _null()
                with context:
                    with autocast:
                        mask_logits, malignancy_logits = net(images)
                    loss = compute_loss(config, mask_logits, malignancy_logits, masks, malignant)
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
                _average_buffers(model_net, world)
            metrics = _validate(model_net, val_loader, config, device) if len(val_set) else {}
            entry = {"epoch": epoch, "train_loss": train_loss, **metrics, "seconds": time.perf_counter() - epoch_start}
            history.append(entry)
            improved = metrics.get("val_dice", -1.0) > best_dice
            if improved:
                best_dice = metrics.get("val_dice", best_dice)
            if is_main:
                if improved:
                    save_model(model_net, card_for({**metrics, "epoch": epoch}), out / "best.safetensors")
                _save_checkpoint(checkpoint_path, model_net, optimizer,
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

    digests = [_weight_digest(model_net)]
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


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

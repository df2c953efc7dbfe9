"""The model card of a finished run: downloaded beside its checkpoint and ONNX graph."""


def model_card(run, predictor, evaluation) -> dict:
    """What a trained run is, how to feed it and how well it did, as one JSON document."""
    p = predictor.preprocessing
    return {
        "format": "dlstudio-model-card", "version": 1,
        "run": run.pk, "experiment": run.experiment.name, "arch": run.arch,
        "classes": predictor.classes,
        "preprocessing": {
            "image_size": p.image_size, "resize_mode": p.resize_mode, "channels": p.channels,
            "color": "grayscale" if p.channels == 1 else "rgb", "normalize": p.normalize, "equalize": p.equalize,
            "mean": p.mean, "std": p.std,
            "input": "N x C x H x W float32: pixels / 255, then the normalisation above (for mean_image, "
                     "the checkpoint holds the mean image to subtract)",
        },
        "metrics": {"best_epoch": run.best_epoch, "best_val_acc": run.best_val_acc, "test_acc": run.test_acc,
                    "evaluation_split": evaluation.split if evaluation else None,
                    "evaluation_accuracy": evaluation.accuracy if evaluation else None,
                    "top_k_accuracy": evaluation.top_k_accuracy if evaluation else None,
                    "evaluated_checkpoint_sha256": evaluation.checkpoint_sha256 if evaluation else None},
        "dataset": ({"id": run.dataset.pk, "name": run.dataset.name, "num_images": run.dataset.num_images,
                     "options": run.dataset.options} if run.dataset else None),
        "config": run.config,
        "started_from_run": run.parent_id,
        "trained": {"device": run.device, "worker": run.worker, "torch": run.torch_version,
                    "code": run.code_version, "finished": run.finished_at.isoformat() if run.finished_at else None,
                    "environment": run.environment},
    }

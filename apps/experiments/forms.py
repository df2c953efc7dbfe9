"""The experiment form: one field per key of the training config (docs/CONFIG.md), each with its default
and a sentence on what the knob does to training. The engine's TrainConfig stays the single judge of
what is valid."""
from django import forms

from workers.engine.train.config import (
    AMP_MODES, ARCHS, INITS, LR_SCHEDULES, MONITORS, NORMALIZATIONS, OPTIMIZERS, TrainConfig,
)

DEFAULTS = TrainConfig().to_dict()

# (config key, label, help). Nested keys use dots; the form field is named with "__".
SECTIONS = [
    ("Model", [
        ("arch", "Architecture", "smallcnn is quick on small images; resnet18 is a strong default for photos; "
                                 "bigger networks learn more but need more data and time."),
        ("init", "Initialisation", "How weights start. xavier (Glorot) keeps signals the same size through "
                                   "tanh/sigmoid-like layers; kaiming does so for ReLU; default is torchvision's."),
        ("hidden_units", "Hidden units", "Dense layers of the classifier head, e.g. 128 or 256,128; empty for none."),
        ("dropout", "Dropout", "Share of head activations dropped while training (0–0.9): fights overfitting, "
                               "too much slows learning."),
        ("batch_norm", "Batch norm", "Normalises activations per batch: steadier, faster training."),
        ("pretrained", "Start from", "Random weights, ImageNet weights (torchvision's file, or one from the team's "
                                     "weights library), or the best checkpoint of an earlier run; the head is "
                                     "replaced when the classes differ."),
        ("weights_file", "Weights", "With ImageNet weights: torchvision's file from the cache of the machine that "
                                    "trains, or a file of the team's weights library for this architecture."),
        ("pretrained_run", "Run to start from", "Used when “Start from” is an earlier run."),
        ("freeze_backbone_epochs", "Freeze backbone epochs", "Train only the new head for this many epochs first, "
                                                             "so the pretrained features are not wrecked early."),
    ]),
    ("Optimisation", [
        ("epochs", "Epochs", "Passes over the training split (1–1000)."),
        ("batch_size", "Batch size", "Images per step. Larger is faster on a GPU and smoother, but uses more memory."),
        ("optimizer", "Optimizer", "adam/adamw adapt the step per weight and forgive a rough learning rate; "
                                   "sgd with momentum often generalises best when tuned."),
        ("lr", "Learning rate", "Step size. Too high: the loss jumps or becomes NaN; too low: it creeps down "
                                "and training stalls. Try the LR finder."),
        ("momentum", "Momentum", "For sgd and rmsprop: how much of the last step carries on (0.9 is usual)."),
        ("weight_decay", "Weight decay", "Pulls weights towards zero each step: a brake on overfitting "
                                         "(1e-4 to 5e-4 is common with sgd)."),
        ("lr_schedule", "Schedule", "How the rate changes: step decays it every step_size epochs, cosine eases it "
                                    "to zero, onecycle warms up then anneals, plateau decays when val loss stalls."),
        ("step_size", "Step size (epochs)", "For the step schedule: epochs between decays."),
        ("gamma", "Gamma", "For step and plateau: the factor the rate is multiplied by at each decay."),
        ("warmup_epochs", "Warm-up epochs",
         "Ramp the rate up from near zero over these epochs: avoids early blow-ups."),
        ("label_smoothing", "Label smoothing", "Softens the targets (0–0.5): less over-confident models, "
                                               "often a little better accuracy."),
        ("early_stopping__patience", "Early stopping patience", "Stop after this many epochs without improvement "
                                                                "(0 = off); the best checkpoint is kept either way."),
        ("early_stopping__monitor", "Early stopping watches", "The validation figure that must improve."),
    ]),
    ("Data", [
        ("normalize", "Normalisation", "scale divides by 255; channel subtracts the train split's per-channel mean "
                                       "and divides by its std; mean_image subtracts the mean image."),
        ("equalize", "Histogram equalisation", "Spreads each image's intensities: helps with under- or "
                                               "over-exposed images."),
        ("augment__hflip", "Flip horizontally", "Random left-right mirroring: more data for free when the "
                                                "classes look alike mirrored (animals, not text)."),
        ("augment__vflip", "Flip vertically", "Random upside-down flips (aerial or microscope images)."),
        ("augment__crop_pad", "Crop with padding (px)", "Pad by this many pixels and crop back at random: "
                                                        "robustness to small shifts."),
        ("augment__zoom", "Zoom", "Random scaling by up to this share (0.1 = ±10%)."),
        ("augment__rotate", "Rotate (degrees)", "Random rotation up to this angle."),
        ("augment__color_jitter", "Colour jitter", "Random brightness, contrast and saturation changes up to "
                                                   "this share. Augmentation fights overfitting."),
    ]),
    ("Run", [
        ("amp", "Mixed precision", "auto uses bfloat16 on a GPU that has it: about twice as fast, same accuracy."),
        ("device", "Device", "auto picks the worker's GPU, else its CPU."),
        ("seed", "Seed", "Makes the run repeatable: same seed, same data order and starting weights."),
        ("deterministic", "Deterministic", "Same seed, same numbers to the last digit, at a cost: slower on a GPU, "
                                           "and a layer without a deterministic version fails the run."),
    ]),
]

CHOICES = {"arch": ARCHS, "init": INITS, "optimizer": OPTIMIZERS, "lr_schedule": LR_SCHEDULES,
           "normalize": NORMALIZATIONS, "early_stopping__monitor": MONITORS, "amp": AMP_MODES}
PRETRAINED = [("", "random weights"), ("imagenet", "ImageNet weights"), ("run", "an earlier run")]

PRESETS = {
    "quick": ("Quick CNN", {"arch": "smallcnn", "epochs": 10, "optimizer": "adam", "lr": 0.001}),
    "resnet18": ("ResNet-18", {"arch": "resnet18", "epochs": 30, "batch_size": 128, "optimizer": "sgd_nesterov",
                               "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0005, "lr_schedule": "cosine",
                               "warmup_epochs": 1, "label_smoothing": 0.1,
                               "augment": {"hflip": True, "crop_pad": 4}}),
    "finetune": ("Fine-tune from a run", {"epochs": 10, "optimizer": "adam", "lr": 0.0001,
                                          "freeze_backbone_epochs": 2, "pretrained": {"run": None}}),
}


def _default(key: str):
    value = DEFAULTS
    for part in key.split("__"):
        value = value[part]
    return value


class WeightsSelect(forms.Select):
    """Each option carries its file's arch, so the page offers only the files of the chosen architecture."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex=subindex, attrs=attrs)
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["attrs"]["data-arch"] = instance.arch
        return option


class WeightsFileField(forms.ModelChoiceField):
    widget = WeightsSelect

    def label_from_instance(self, obj):
        return f"{obj.name} ({obj.arch}, .{obj.format}, sha256 {obj.sha256[:8]})"


CACHE_CHOICE = "torchvision's file from the local cache"


def _field(key: str, label: str, help_text: str) -> forms.Field:
    if key == "weights_file":
        return WeightsFileField(queryset=None, required=False, empty_label=CACHE_CHOICE,
                                label=label, help_text=help_text)
    if key in CHOICES:
        return forms.ChoiceField(choices=[(c, c) for c in CHOICES[key]], label=label, help_text=help_text)
    if key == "pretrained":
        return forms.ChoiceField(choices=PRETRAINED, required=False, label=label, help_text=help_text)
    if key == "pretrained_run":
        return forms.TypedChoiceField(choices=[], coerce=int, required=False, empty_value=None, label=label,
                                      help_text=help_text)
    if key == "hidden_units":
        return forms.CharField(required=False, label=label, help_text=help_text)
    if key == "device":
        return forms.CharField(max_length=20, label=label, help_text=help_text)
    default = _default(key)
    if isinstance(default, bool):
        return forms.BooleanField(required=False, label=label, help_text=help_text)
    if isinstance(default, int):
        return forms.IntegerField(label=label, help_text=help_text)
    return forms.FloatField(label=label, help_text=help_text, widget=forms.NumberInput(attrs={"step": "any"}))


class ExperimentForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="What this experiment tries, e.g. “resnet18 + flips”.")
    dataset = forms.TypedChoiceField(choices=[], coerce=int, help_text="A ready dataset of this team.")

    def __init__(self, *args, datasets, runs, weights_files, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].choices = [(d.pk, f"{d.name} ({d.num_images} images)") for d in datasets]
        for _, keys in SECTIONS:
            for key, label, help_text in keys:
                self.fields[key] = _field(key, label, help_text)
        self.fields["pretrained_run"].choices = [("", "—")] + [
            (r.pk, f"Run {r.pk}: {r.experiment.name} ({r.arch}, val acc {r.best_val_acc or 0:.3f})") for r in runs]
        self.fields["weights_file"].queryset = weights_files

    def sections(self):
        return [(title, [self[key] for key, _, _ in keys]) for title, keys in SECTIONS]

    def config(self) -> dict:
        """The cleaned fields as a config dict for TrainConfig (nested keys nested again)."""
        data = self.cleaned_data
        config: dict = {}
        for _, keys in SECTIONS:
            for key, _, _ in keys:
                if key in ("pretrained", "pretrained_run", "weights_file"):
                    continue
                value = data.get(key)
                if key == "hidden_units":
                    value = _units(value)
                if "__" in key:
                    outer, inner = key.split("__")
                    config.setdefault(outer, {})[inner] = value
                else:
                    config[key] = value
        config["pretrained"] = {"imagenet": "imagenet", "run": {"run": data.get("pretrained_run")}}.get(
            data.get("pretrained") or "")
        return config

    def weights_file(self):
        """The chosen library file, only when starting from ImageNet (a hidden leftover choice is ignored)."""
        if self.cleaned_data.get("pretrained") != "imagenet":
            return None
        return self.cleaned_data.get("weights_file")


def _units(text: str | None):
    try:
        return [int(part) for part in (text or "").replace(" ", "").split(",") if part]
    except ValueError:
        return text  # TrainConfig explains what hidden_units accepts


def initial_from(config: dict) -> dict:
    """Form values from a (possibly partial) config: defaults for what it leaves out."""
    merged = {**DEFAULTS, **{k: v for k, v in config.items() if not isinstance(v, dict) or k == "pretrained"}}
    for outer in ("augment", "early_stopping"):
        merged[outer] = {**DEFAULTS[outer], **config.get(outer, {})}
    initial = {}
    for _, keys in SECTIONS:
        for key, _, _ in keys:
            if "__" in key:
                outer, inner = key.split("__")
                initial[key] = merged[outer][inner]
            elif key in merged:
                initial[key] = merged[key]
    initial["hidden_units"] = ",".join(str(u) for u in merged["hidden_units"])
    pretrained = merged.get("pretrained")
    initial["pretrained"] = "run" if isinstance(pretrained, dict) else (pretrained or "")
    initial["pretrained_run"] = pretrained.get("run") if isinstance(pretrained, dict) else None
    return initial


def form_field_of(config_field: str) -> str | None:
    """The form field that shows a config error (`config.augment.rotate` -> `augment__rotate`)."""
    name = config_field.removeprefix("config.").replace(".", "__")
    return "pretrained" if name.startswith("pretrained") else name

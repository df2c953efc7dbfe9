"""The form that starts a sweep from the experiment page.

It only parses: `services.sweep_create` judges every setting and names the field it refuses
(`parameters.lr`, `max_parallel`), and `field_of` puts that sentence beside the field that holds it.
A preset other than "custom" fills the parameters (the page's script shows them as the preset is
picked; the server fills them too, so the form works without JavaScript).
"""
import json

from django import forms

from dlstudio import bounded_json

from .models import Sweep
from .study import METRICS

CUSTOM = "custom"
# Service codes that are not the name of a form field.
FIELD_OF_CODE = {"early_stop.min_epochs": "min_epochs", "early_stop.reduction_factor": "reduction_factor"}


class SweepForm(forms.Form):
    name = forms.CharField(max_length=200, label="Name",
                           help_text="What the sweep asks, e.g. “Which learning rate?”.")
    preset = forms.ChoiceField(label="Preset", help_text="A common question, or your own search space.")
    method = forms.ChoiceField(choices=Sweep.Method.choices, initial=Sweep.Method.GRID, label="Method",
                               help_text="grid tries every combination; random draws; TPE draws where the "
                                         "trials so far did well.")
    parameters = forms.CharField(widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}), required=False,
                                 label="Parameters (JSON)",
                                 help_text='{config key: space}; a space is {"values": [...]}, {"uniform": [lo, hi]}, '
                                           '{"log_uniform": [lo, hi]} or {"int": [lo, hi]}. Nested keys take dots: '
                                           '"augment.hflip".')
    trials = forms.IntegerField(required=False, initial=10, label="Trials",
                                help_text="How many runs for random and TPE; a grid runs all its points.")
    max_parallel = forms.IntegerField(initial=2, label="At most at once",
                                      help_text="Trials queued or running at the same time; the others wait.")
    metric = forms.ChoiceField(choices=[(m, m) for m in METRICS], initial="val_acc", label="Metric",
                               help_text="What a trial is judged by: its best value over its epochs.")
    early_stop = forms.BooleanField(required=False, label="Stop weak trials early (ASHA)",
                                    help_text="At min_epochs × factor^k epochs, a trial behind the best 1/factor "
                                              "of the others at that epoch ends there.")
    min_epochs = forms.IntegerField(required=False, initial=1, label="First comparison after (epochs)")
    reduction_factor = forms.IntegerField(required=False, initial=3, label="Reduction factor")
    seed = forms.IntegerField(initial=0, label="Seed", help_text="Random and TPE draw the same trials for the "
                                                                 "same seed.")

    def __init__(self, data=None, *, presets: dict[str, dict], **kwargs):
        self.presets = presets
        first = next(iter(presets), CUSTOM)
        initial = {"preset": first, "method": presets[first]["method"] if first in presets else Sweep.Method.GRID,
                   "parameters": self.shown(presets[first]["parameters"]) if first in presets else ""}
        super().__init__(data, initial={**initial, **kwargs.pop("initial", {})}, **kwargs)
        self.fields["preset"].choices = [*((key, p["label"]) for key, p in presets.items()), (CUSTOM, "Custom")]

    @staticmethod
    def shown(parameters: dict) -> str:
        return json.dumps(parameters, indent=2)

    def clean(self):
        cleaned = super().clean()
        preset = self.presets.get(cleaned.get("preset"))
        if preset is not None:
            # What the preset asks, whatever the box held; the page's script switches to "custom" on an edit.
            cleaned["parameters"] = preset["parameters"]
            if self.data is not None:
                self.data = self.data.copy()
                self.data["parameters"] = self.shown(preset["parameters"])
            return cleaned
        text = cleaned.get("parameters", "")
        if not text.strip():
            self.add_error("parameters", "Give at least one parameter to search, e.g. "
                                         '{"lr": {"log_uniform": [0.0001, 0.1]}}.')
            return cleaned
        try:
            cleaned["parameters"] = bounded_json.loads(text)
        except bounded_json.TooDeep as exc:
            self.add_error("parameters", str(exc))
        except ValueError as exc:
            self.add_error("parameters", f"The parameters are not JSON: {exc.msg} at line {exc.lineno}, "
                                         f"column {exc.colno}.")
        return cleaned

    def settings(self) -> dict:
        """The keyword arguments of `services.sweep_create`."""
        data = self.cleaned_data
        early_stop = None
        if data["early_stop"]:
            early_stop = {"method": "asha",
                          "min_epochs": 1 if data["min_epochs"] is None else data["min_epochs"],
                          "reduction_factor": 3 if data["reduction_factor"] is None else data["reduction_factor"]}
        return {"name": data["name"], "method": data["method"], "parameters": data["parameters"],
                "trials": data["trials"], "max_parallel": data["max_parallel"], "metric": data["metric"],
                "early_stop": early_stop, "seed": data["seed"]}

    def field_of(self, code: str | None) -> str | None:
        """The field a service refusal's code names (None: the form as a whole)."""
        code = code or ""
        if code.startswith("parameters"):
            return "parameters"
        field = FIELD_OF_CODE.get(code, code)
        return field if field in self.fields else None

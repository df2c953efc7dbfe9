from django import forms

from .models import Run


class RunFilterForm(forms.Form):
    dataset = forms.IntegerField(required=False)
    experiment = forms.IntegerField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "any")] + list(Run.Status.choices))
    arch = forms.CharField(required=False, max_length=40)
    creator = forms.CharField(required=False, max_length=150)
    tag = forms.CharField(required=False, max_length=40)
    ordering = forms.ChoiceField(required=False, choices=[("-created", "newest first"),
                                                          ("-best_val_acc", "best validation accuracy")])

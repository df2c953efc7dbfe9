from django import forms

from workers.engine import IMAGENET_ARCHS


class WeightsUploadForm(forms.Form):
    file = forms.FileField(widget=forms.FileInput(attrs={"accept": ".pth,.pt,.safetensors"}),
                           help_text="A state dict saved with torch.save (.pth, .pt) or safetensors (.safetensors); "
                                     "it is checked without running any code in it.")
    arch = forms.ChoiceField(choices=[(a, a) for a in IMAGENET_ARCHS], initial="resnet18",
                             label="Architecture", help_text="The torchvision network the weights were trained for; "
                                                              "they must load into it exactly.")
    name = forms.CharField(max_length=200, required=False,
                           help_text="How the experiment form lists it, e.g. “resnet18 ImageNet V1”; "
                                     "the file's name when empty.")

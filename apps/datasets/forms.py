from django import forms

from workers.engine import COLORS, RESIZE_MODES

from .selectors import ISSUES

LABEL_CHOICES = [
    ("auto", "detect from the archive"),
    ("folders", "class folders: cat/001.jpg"),
    ("filename", "file names: cat.0.jpg, dog.12.jpg"),
    ("csv", "labels.csv: filename,label (or one-hot columns)"),
]

HELP = {
    "archive": "A zip, tar or tar.gz with one folder per class (cat/001.jpg), or train/, val/ and test/ "
               "folders each holding class folders to keep your own split.",
    "name": "How the team will recognise it in experiments.",
    "val_fraction": "Share of each class held out to validate after every epoch (0.2 = 20%).",
    "test_fraction": "Share of each class kept for the final, untouched test (0.1 = 10%).",
    "image_size": "Side in pixels every image is resized to. Empty: the images' own size when they all "
                  "share one of at most 256 px, else 224.",
    "resize_mode": "squash stretches to a square; crop keeps the centre; fill pads with black.",
    "color": "auto picks grayscale when every image is grayscale, else RGB.",
    "seed": "Makes the random split repeatable.",
    "labels": "Where each image's class comes from. Detect picks labels.csv when the archive has one, else class "
              "folders, else the file names' leading letters (Kaggle's Dogs vs Cats: train/cat.0.jpg).",
    "allow_upscale": "Tick to accept an image size more than 4 times the largest image's side; enlarging tiny "
                     "images makes a large pack and adds no detail.",
}


class DatasetUploadForm(forms.Form):
    archive = forms.FileField(help_text=HELP["archive"])
    name = forms.CharField(max_length=200, help_text=HELP["name"])
    val_fraction = forms.FloatField(initial=0.2, min_value=0, max_value=0.9, help_text=HELP["val_fraction"],
                                    widget=forms.NumberInput(attrs={"step": "0.05"}))
    test_fraction = forms.FloatField(initial=0.1, min_value=0, max_value=0.9, help_text=HELP["test_fraction"],
                                     widget=forms.NumberInput(attrs={"step": "0.05"}))
    image_size = forms.IntegerField(required=False, min_value=4, max_value=1024, help_text=HELP["image_size"])
    resize_mode = forms.ChoiceField(choices=[(m, m) for m in RESIZE_MODES], initial="squash",
                                    help_text=HELP["resize_mode"])
    color = forms.ChoiceField(choices=[(c, c) for c in COLORS], initial="auto", help_text=HELP["color"])
    seed = forms.IntegerField(initial=0, min_value=0, help_text=HELP["seed"])
    # Not required: a client that sends none gets the contract's default, class folders.
    labels = forms.ChoiceField(choices=LABEL_CHOICES, initial="auto", required=False, help_text=HELP["labels"])
    allow_upscale = forms.BooleanField(required=False, label="Enlarge small images",
                                       help_text=HELP["allow_upscale"])


class DatasetVersionForm(forms.Form):
    """A new version from the dataset page: an archive to add, and the gallery's exclude and relabel (JSON)."""

    archive = forms.FileField(required=False, help_text="Images to add, in any layout an upload takes.")
    labels = forms.ChoiceField(choices=LABEL_CHOICES, initial="auto", required=False, help_text=HELP["labels"])
    exclude = forms.JSONField(required=False, widget=forms.HiddenInput)
    relabel = forms.JSONField(required=False, widget=forms.HiddenInput)


class GalleryFilterForm(forms.Form):
    label = forms.IntegerField(required=False, min_value=0)
    split = forms.IntegerField(required=False, min_value=0, max_value=2)
    issue = forms.ChoiceField(choices=[("", "any")] + [(i, i.replace("_", "-")) for i in ISSUES], required=False)
    page = forms.IntegerField(required=False, min_value=1)

from django.contrib import admin

from .models import Dataset, DatasetClass, Image


class DatasetClassInline(admin.TabularInline):
    model = DatasetClass
    extra = 0


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "status", "num_images", "image_size", "created"]
    list_filter = ["status", "team"]
    search_fields = ["name"]
    inlines = [DatasetClassInline]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["dataset", "index", "label", "split", "name"]
    list_filter = ["split"]

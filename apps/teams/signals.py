from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from .services import personal_team_create


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="personal_team_for_new_user")
def personal_team_for_new_user(sender, instance, created, raw=False, **kwargs):
    # Every account, however it was made (admin, createsuperuser, adduser), gets a team of its own.
    if created and not raw:
        personal_team_create(user=instance)

from django.apps import AppConfig


class AvatarsConfig(AppConfig):
    name = "avatars"
    verbose_name = "Avatars"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the receivers)

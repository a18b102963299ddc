from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
from django.template.defaultfilters import filesizeformat
from django.utils.text import Truncator

from .images import ALLOWED_NAMES, CheckedImage, InvalidImage, check_image, too_large_message

# Longer upload names are cut (with an ellipsis) in error messages.
MAX_SHOWN_NAME = 60


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        fields = ("username",)


class AvatarForm(forms.Form):
    image = forms.FileField(
        label="Image",
        help_text="",
        # check_image refuses an empty file, in a message that names it.
        allow_empty_file=True,
        error_messages={
            "required": "Choose an image to upload.",
            "invalid": "No file was submitted; check the form's encoding type.",
        },
        widget=forms.FileInput(attrs={"accept": "image/jpeg,image/png,image/gif,image/webp"}),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["image"].help_text = (
            f"{ALLOWED_NAMES}, at most {filesizeformat(settings.AVATAR_MAX_BYTES)} and "
            f"{settings.AVATAR_MAX_PIXELS / 1_000_000:g} megapixels."
        )

    @classmethod
    def refused(cls, reason: str) -> AvatarForm:
        """The form for an upload refused before it was read, showing ``reason`` on the field."""
        form = cls(data={}, files={})
        form.full_clean()
        form.errors.clear()  # "Choose an image": the file was there, but never read
        form.add_error("image", forms.ValidationError(reason, code="too_large"))
        return form

    def clean_image(self) -> CheckedImage:
        upload = self.cleaned_data["image"]
        if upload.size > settings.AVATAR_MAX_BYTES:
            # Checked before reading: the file may be on disk and big.
            raise _rejected(
                upload.name, too_large_message(upload.size, settings.AVATAR_MAX_BYTES), "too_large"
            )
        upload.seek(0)
        try:
            return check_image(
                upload,
                max_bytes=settings.AVATAR_MAX_BYTES,
                max_pixels=settings.AVATAR_MAX_PIXELS,
                thumb_size=settings.AVATAR_THUMB_SIZE,
            )
        except InvalidImage as exc:
            raise _rejected(upload.name, exc.message, exc.code) from None


def _rejected(name: str | None, message: str, code: str) -> forms.ValidationError:
    """The error for an upload, naming the file: the user may have picked the wrong one."""
    shown = Truncator(name or "the file").chars(MAX_SHOWN_NAME)
    return forms.ValidationError(
        "“%(name)s” was not accepted. %(reason)s",
        code=code,
        params={"name": shown, "reason": message},
    )

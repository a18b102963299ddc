from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
from django.template.defaultfilters import filesizeformat

from .images import ALLOWED_NAMES, CheckedImage, InvalidImage, check_image, too_large_message


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        fields = ("username",)


class AvatarForm(forms.Form):
    image = forms.FileField(
        label="Image",
        help_text="",
        error_messages={
            "required": "Choose an image to upload.",
            "empty": "The file is empty.",
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

    def clean_image(self) -> CheckedImage:
        upload = self.cleaned_data["image"]
        if upload.size > settings.AVATAR_MAX_BYTES:
            # Checked before reading: the file may be on disk and big.
            raise forms.ValidationError(
                too_large_message(upload.size, settings.AVATAR_MAX_BYTES), code="too_large"
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
            raise forms.ValidationError(exc.message, code=exc.code) from None

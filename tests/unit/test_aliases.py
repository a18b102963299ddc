"""AliasedStorage, the recipe for one MogileFS class per field: the field follows
STORAGES as it is now, override_settings included."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage, storages
from django.test import override_settings
from django_mogilefs.aliases import AliasedStorage
from django_mogilefs.storage import MogileFSStorage

pytestmark = pytest.mark.unit

MEMORY = {"BACKEND": "django.core.files.storage.InMemoryStorage"}


def test_a_field_follows_override_settings_of_its_alias():
    from avatars.models import Avatar

    field_storage = Avatar._meta.get_field("thumbnail").storage
    assert isinstance(field_storage.backend, MogileFSStorage)
    assert field_storage.config.mogile_class == "thumb"  # the backend's extras too
    with override_settings(STORAGES={"default": MEMORY, "thumbs": MEMORY, "staticfiles": MEMORY}):
        name = field_storage.save("t/a.txt", ContentFile(b"abc"))
        assert isinstance(field_storage.backend, InMemoryStorage)
        assert storages["thumbs"].open(name).read() == b"abc"
    assert isinstance(field_storage.backend, MogileFSStorage)


def test_deconstructs_to_its_alias():
    assert AliasedStorage("thumbs").deconstruct() == (
        "django_mogilefs.aliases.AliasedStorage",
        ("thumbs",),
        {},
    )

from django.contrib import admin

from .models import Avatar


@admin.register(Avatar)
class AvatarAdmin(admin.ModelAdmin):
    """Read-only: avatars are set through the site, which stores the files first."""

    list_display = ("user", "content_type", "width", "height", "size", "updated")
    search_fields = ("user__username",)
    readonly_fields = [f.name for f in Avatar._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

from django.contrib import admin

from batches.models import Batch


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ("batch_code", "description", "data_source", "updated_at")
    search_fields = ("batch_code", "description")
    readonly_fields = ("batch_code", "data_source", "config", "created_by", "created_at", "updated_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

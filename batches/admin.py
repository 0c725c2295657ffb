"""The operators' admin for batches: start, cancel, delete — through batches.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from batches.models import Batch
from batches.selectors import batches_with_latest_task
from batches.services import active_task, batch_cancel, batch_create, batch_delete, batch_start, batch_update
from batches.sources import sources, validate_batch_config
from taskcenter.errors import ServiceError
from tasks.actors import Actor
from tasks.admin_helpers import (
    ObjectIdMixin,
    ServiceDeleteMixin,
    object_pk_or_404,
    progress_bar,
    run_bulk_action,
    status_badge,
)
from tasks.states import PRIORITY_MAX, PRIORITY_MIN, Trigger


class StartForm(forms.Form):
    """The batch page's start button's options; a run_after without a time zone is in the
    admin's time zone, as every time the admin shows."""

    priority = forms.IntegerField(min_value=PRIORITY_MIN, max_value=PRIORITY_MAX, required=False)
    run_after = forms.DateTimeField(required=False, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"])


class BatchForm(forms.ModelForm):
    data_source = forms.ChoiceField(label=_("data source"))
    config = forms.JSONField(
        label=_("configuration"),
        help_text=_("include_dimensions, calculation_types, optional filters and histogram_bins"),
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80}),
    )

    class Meta:
        model = Batch
        fields = ["batch_code", "description", "data_source", "config"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "data_source" in self.fields:  # view-only users get a form without editable fields
            self.fields["data_source"].choices = [(source.name, source.name) for source in sources()]
        if self.instance.pk and "batch_code" in self.fields:
            self.fields["batch_code"].disabled = True  # immutable

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and active_task(self.instance) is not None:
            raise forms.ValidationError(_("This batch has an active task: cancel it before editing."))
        if "data_source" in cleaned and "config" in cleaned:
            try:
                cleaned["config"] = validate_batch_config(cleaned["data_source"], cleaned["config"])
            except ServiceError as exc:
                for field, problems in (exc.errors or {"config": [exc.message]}).items():
                    target = "data_source" if field == "data_source" else "config"
                    self.add_error(target, f"{field}: {'; '.join(problems)}")
        return cleaned


@admin.register(Batch)
class BatchAdmin(ObjectIdMixin, ServiceDeleteMixin, admin.ModelAdmin):
    form = BatchForm
    list_display = (
        "batch_code",
        "description",
        "data_source",
        "latest_status",
        "latest_progress",
        "task_count",
        "updated_at",
    )
    list_filter = ("data_source", "created_at")
    search_fields = ("batch_code", "description")
    list_per_page = 50
    actions = ["start_batches", "cancel_active_tasks", "delete_batches"]
    readonly_fields = ("batch_tasks",)

    class Media:
        js = ("taskcenter/live.js",)

    def get_queryset(self, request):
        return batches_with_latest_task()

    @admin.display(description=_("latest task"), ordering="latest_task_status")
    def latest_status(self, batch):
        return status_badge(batch.latest_task_status, task_id=batch.latest_task_id)

    @admin.display(description=_("progress"))
    def latest_progress(self, batch):
        if batch.latest_task_id is None:
            return "—"
        return progress_bar(batch.latest_task_progress, task_id=batch.latest_task_id, status=batch.latest_task_status)

    @admin.display(description=pgettext_lazy("column: how many tasks", "tasks"), ordering="task_count")
    def task_count(self, batch):
        return batch.task_count

    @admin.display(description=_("tasks of this batch"))
    def batch_tasks(self, batch):
        if not batch.pk:
            return "—"
        rows = [
            (
                reverse("admin:tasks_task_change", args=[task.pk]),
                str(task.pk)[:8],
                status_badge(task.status, task_id=task.pk),
                progress_bar(task.progress, task_id=task.pk, status=task.status),
                timezone.localtime(task.created_at).strftime("%Y-%m-%d %H:%M"),  # the display zone
            )
            for task in batch.tasks.order_by("-created_at")[:50]
        ]
        return format_html_join("", "<div><a href='{}'>{}</a> {} {} {}</div>", rows) or "—"

    # --- the "start" button on a batch's page --------------------------------------------------

    def get_urls(self):
        from django.urls import path

        extra = [
            path(
                "<path:object_id>/start/",
                self.admin_site.admin_view(self.start_view),
                name="batches_batch_start",
            )
        ]
        return extra + super().get_urls()

    def start_view(self, request, object_id):
        from django.core.exceptions import PermissionDenied
        from django.http import HttpResponseNotAllowed
        from django.shortcuts import get_object_or_404, redirect

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_start_permission(request):
            raise PermissionDenied
        batch = get_object_or_404(Batch, pk=object_pk_or_404(self.opts, object_id))
        form = StartForm(request.POST)
        if not form.is_valid():
            for field, errors in form.errors.items():
                self.message_user(request, f"{field}: {' '.join(errors)}", messages.ERROR)
            return redirect("admin:batches_batch_change", batch.pk)
        try:
            task = batch_start(
                actor=Actor.from_request(request),
                batch_code=batch.batch_code,
                trigger=Trigger.MANUAL,
                priority=form.cleaned_data["priority"] or 0,
                run_after=form.cleaned_data["run_after"],
            )
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, _("Started task %(task)s.") % {"task": task.pk}, messages.SUCCESS)
        return redirect("admin:batches_batch_change", batch.pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_start": self.has_start_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    # --- saving through the services ----------------------------------------------------------

    def save_model(self, request, obj, form, change):
        actor = Actor.from_request(request)
        data = form.cleaned_data
        if change:
            batch_update(
                actor=actor,
                batch_code=obj.batch_code,
                changes={
                    "description": data["description"],
                    "data_source": data["data_source"],
                    "config": data["config"],
                },
            )
        else:
            batch_create(
                actor=actor,
                batch_code=data["batch_code"],
                description=data["description"],
                data_source=data["data_source"],
                config=data["config"],
            )
        obj.refresh_from_db() if obj.pk else obj.__dict__.update(
            Batch.objects.get(batch_code=data["batch_code"]).__dict__
        )

    def delete_model(self, request, obj):
        batch_delete(actor=Actor.from_request(request), batch_code=obj.batch_code)

    def delete_queryset(self, request, queryset):
        self.delete_batches(request, queryset)

    def has_start_permission(self, request):
        return request.user.has_perm("tasks.start_task")

    def has_cancel_permission(self, request):
        return request.user.has_perm("tasks.cancel_task")

    # --- actions ------------------------------------------------------------------------------

    @admin.action(description=_("Start statistics for selected batches"), permissions=["start"])
    def start_batches(self, request, queryset):
        def start(actor, code):
            return batch_start(actor=actor, batch_code=code, trigger=Trigger.MANUAL).status

        run_bulk_action(self, request, queryset.values_list("batch_code", flat=True), start, _("started"))

    @admin.action(description=_("Cancel the active task of selected batches"), permissions=["cancel"])
    def cancel_active_tasks(self, request, queryset):
        def cancel(actor, code):
            return batch_cancel(actor=actor, batch_code=code).status

        run_bulk_action(self, request, queryset.values_list("batch_code", flat=True), cancel, _("cancelled"))

    @admin.action(description=_("Delete selected batches"), permissions=["delete"])
    def delete_batches(self, request, queryset):
        def delete(actor, code):
            batch_delete(actor=actor, batch_code=code)
            return "deleted"

        run_bulk_action(self, request, queryset.values_list("batch_code", flat=True), delete, _("deleted"))

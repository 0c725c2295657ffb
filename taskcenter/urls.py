from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from batches.api.views import BATCH_CODE_REGEX, BatchViewSet, DataSourceViewSet, StatisticsTaskViewSet
from taskcenter import views
from taskcenter.api.views import SchemaView, api_not_found
from tasks.api.views import UUID_REGEX, AuditLogViewSet, ScheduleViewSet, TaskTypeViewSet, TaskViewSet
from tasks.dashboard import dashboard_view

router = SimpleRouter(trailing_slash=False)
router.register("tasks", TaskViewSet, basename="task")
router.register("task-types", TaskTypeViewSet, basename="task-type")
router.register("data-sources", DataSourceViewSet, basename="data-source")
router.register("audit-logs", AuditLogViewSet, basename="audit-log")
router.register("schedules", ScheduleViewSet, basename="schedule")
router.register("statistics/batches", BatchViewSet, basename="batch")

stats = StatisticsTaskViewSet
api_v1 = [
    re_path(
        rf"^statistics/batches/(?P<batch_code>{BATCH_CODE_REGEX})/results$",
        BatchViewSet.as_view({"get": "results"}),
        name="batch-results",
    ),
    path("statistics/tasks/batch-start", stats.as_view({"post": "batch_start"}), name="stats-batch-start"),
    path("statistics/tasks/batch-cancel", stats.as_view({"post": "batch_cancel"}), name="stats-batch-cancel"),
    path("statistics/tasks/batch-delete", stats.as_view({"post": "batch_delete"}), name="stats-batch-delete"),
    re_path(
        rf"^statistics/tasks/(?P<task_id>{UUID_REGEX})/status$", stats.as_view({"get": "status"}), name="stats-status"
    ),
    re_path(
        rf"^statistics/tasks/(?P<task_id>{UUID_REGEX})/progress$",
        stats.as_view({"get": "progress"}),
        name="stats-progress",
    ),
    re_path(
        rf"^statistics/tasks/(?P<batch_code>{BATCH_CODE_REGEX})/start$",
        stats.as_view({"post": "start"}),
        name="stats-start",
    ),
    re_path(
        rf"^statistics/tasks/(?P<batch_code>{BATCH_CODE_REGEX})/cancel$",
        stats.as_view({"post": "cancel"}),
        name="stats-cancel",
    ),
    *router.urls,
    re_path(r"^[\s\S]*$", api_not_found),
]

# The admin is taskcenter's operators' console, not "Django administration".
admin.site.site_header = admin.site.site_title = gettext_lazy("taskcenter")

urlpatterns = [
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="taskcenter-dashboard"),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/v1/", include(api_v1)),
]

"""Batches: a named statistics job configuration that is started as tasks."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

batch_code_validator = RegexValidator(
    r"^[A-Za-z0-9_-]{1,64}$",
    _("Use 1–64 characters: letters, digits, '_' and '-'."),
)


class Batch(models.Model):
    batch_code = models.CharField(_("batch code"), max_length=64, unique=True, validators=[batch_code_validator])
    description = models.CharField(_("description"), max_length=500, blank=True, default="")
    data_source = models.CharField(_("data source"), max_length=64, db_index=True)
    config = models.JSONField(_("configuration"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("statistics batch")
        verbose_name_plural = _("statistics batches")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["-created_at"], name="batch_created_idx")]

    def __str__(self) -> str:
        return self.batch_code


class Dimension(models.TextChoices):
    #: School subjects.
    ACADEMIC = "academic", _("Academic")
    #: Everything else assessed: fitness, arts, character, practice, mental health.
    NON_ACADEMIC = "non_academic", _("Non-academic")


class PublishedRecords(models.Manager):
    """Assessment records that are part of the data: not staged by an unfinished import."""

    def get_queryset(self):
        return super().get_queryset().filter(import_task__isnull=True)


class AssessmentRecord(models.Model):
    """One assessed score of one student: the rows of the ``student_assessments`` data source."""

    student_id = models.CharField(_("student id"), max_length=32)
    school = models.CharField(_("school"), max_length=64)
    grade = models.CharField(_("grade"), max_length=16)
    class_name = models.CharField(_("class"), max_length=32, blank=True, default="")
    dimension = models.CharField(_("dimension"), max_length=16, choices=Dimension.choices)
    indicator = models.CharField(_("indicator"), max_length=64)
    #: null: the assessment took place but no score was recorded (counted as missing).
    score = models.FloatField(_("score"), null=True, blank=True)
    assessed_at = models.DateField(_("assessed on"))
    #: Set while an import task has staged the row and not yet completed: nobody reads it until
    #: the task's completion clears this (in the same transaction). Deleting the task (or purging
    #: it) deletes what it staged.
    import_task = models.ForeignKey(
        "tasks.Task",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("staged by import task"),
        db_index=False,  # assessment_staged_idx serves it
    )

    #: Every row, the staged ones included (imports and clean-up only).
    with_staged = models.Manager()
    objects = PublishedRecords()

    class Meta:
        verbose_name = _("assessment record")
        verbose_name_plural = _("assessment records")
        default_manager_name = "objects"
        base_manager_name = "with_staged"
        indexes = [
            models.Index(
                fields=["import_task"], name="assessment_staged_idx", condition=models.Q(import_task__isnull=False)
            ),
            # The statistics loader reads the selected dimensions in student order.
            models.Index(fields=["student_id", "dimension"], name="assessment_student_idx"),
            models.Index(fields=["school"], name="assessment_school_idx"),
            models.Index(fields=["grade"], name="assessment_grade_idx"),
            models.Index(fields=["assessed_at"], name="assessment_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.student_id} {self.indicator}={self.score}"

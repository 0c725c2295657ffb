"""The Chinese UI: every status, category, trigger and admin string is translated; English on request."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

from django.utils import translation

from tasks.actors import SYSTEM
from tasks.services import task_create
from tasks.states import ErrorCategory, TaskStatus, Trigger

PO = Path(__file__).resolve().parent.parent / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def test_statuses_read_in_chinese_and_in_english():
    with translation.override("zh-hans"):
        assert [str(label) for label in TaskStatus.labels] == ["待执行", "执行中", "已暂停", "已完成", "失败", "已取消"]
    with translation.override("en"):
        assert [str(label) for label in TaskStatus.labels] == [
            "Pending",
            "Processing",
            "Paused",
            "Completed",
            "Failed",
            "Cancelled",
        ]


def test_every_choice_label_has_a_translation():
    for enum in (TaskStatus, ErrorCategory, Trigger):
        for member in enum:
            with translation.override("en"):
                english = str(member.label)
            with translation.override("zh-hans"):
                chinese = str(member.label)
            assert chinese != english or english == "API", member


def test_the_catalogue_is_complete_and_compiled():
    text = PO.read_text(encoding="utf-8")
    untranslated = re.findall(r'^msgid "(.+)"\nmsgstr ""$', text, re.M)
    assert untranslated == []
    assert "fuzzy" not in text
    # The compiled catalogue says what the source says (it was compiled after the last edit).
    with open(PO.with_suffix(".mo"), "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    entries = re.findall(r'^(?:msgctxt "(.+)"\n)?msgid "(.+)"\nmsgstr "(.+)"$', text, re.M)
    assert len(entries) > 100
    for context, msgid, msgstr in entries:
        msgid, msgstr = msgid.replace('\\"', '"'), msgstr.replace('\\"', '"')
        assert (compiled.pgettext(context, msgid) if context else compiled.gettext(msgid)) == msgstr, msgid


def test_admin_speaks_chinese_by_default_and_english_on_request(admin_client):
    task_create(actor=SYSTEM, task_type="canary", params={})
    chinese = admin_client.get("/admin/tasks/task/").content.decode()
    assert "待执行" in chinese and "取消所选任务" in chinese
    english = admin_client.get("/admin/tasks/task/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Pending" in english and "Cancel selected tasks" in english

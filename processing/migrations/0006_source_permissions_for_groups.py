"""Viewers and operators see HTTP sources; operators pull them (with ``upload_file``)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view_source = Permission.objects.get(content_type__app_label="ingestion", codename="view_source")
    for group in Group.objects.filter(name__in=["Viewers", "Operators"]):
        group.permissions.add(view_source)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view_source = Permission.objects.filter(content_type__app_label="ingestion", codename="view_source").first()
    if view_source is not None:
        for group in Group.objects.filter(name__in=["Viewers", "Operators"]):
            group.permissions.remove(view_source)


class Migration(migrations.Migration):
    dependencies = [
        ("processing", "0005_sources_push_notifications"),
        ("ingestion", "0004_sources_push_notifications"),
    ]

    operations = [migrations.RunPython(grant, revoke)]

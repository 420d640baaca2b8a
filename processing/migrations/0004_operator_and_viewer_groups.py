"""The two roles of the admin console, as groups of Django permissions.

Viewers read everything; operators also upload files, retry, cancel and
replay runs and fix rejected rows. Add people to a group in the admin.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = [
    ("ingestion", "view_dataset"),
    ("ingestion", "view_schemaversion"),
    ("ingestion", "view_rawfile"),
    ("processing", "view_run"),
    ("processing", "view_record"),
    ("processing", "view_rejectedrow"),
]
OPERATE = [
    ("processing", "upload_file"),
    ("processing", "operate_run"),
    ("processing", "change_rejectedrow"),
]
GROUPS = {"Viewers": VIEW, "Operators": VIEW + OPERATE}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist now,
    # for the models as they are at this migration (a later one removes a model).
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in perms:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def delete_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("processing", "0003_run_fixed_rows_and_permissions"),
        ("ingestion", "0002_dataset_grants"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, delete_groups)]

from django.contrib.admin.apps import AdminConfig


class DataflowAdminConfig(AdminConfig):
    """The Django admin, with DataFlow's operations dashboard on its index page."""

    default_site = "dataflow.admin_site.DataflowAdminSite"

"""Views, one module per resource. They check access, call selectors and services, and stay thin."""

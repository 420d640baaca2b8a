"""Serializers, one module per resource; each lists its fields explicitly."""

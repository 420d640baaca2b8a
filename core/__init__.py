"""What every layer shares and nothing else: the bottom of the import layers.

``core`` imports no other project package. It holds the per-request context
that services read (``context``), the request-body limits every door applies
(``uploads``), the base class of the management commands (``commands``) and
the metrics any layer may count (``metrics``).
"""

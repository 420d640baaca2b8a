"""Operations every door (admin, API, commands, schedules) calls, by topic.

The modules form layers, each importing only those below it (checked by
import-linter, see pyproject.toml): ``push`` and ``rejects`` use ``runs``,
which uses ``sources``, ``previews`` and ``broker``.
"""

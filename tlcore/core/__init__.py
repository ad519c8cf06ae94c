"""What every layer of the engine speaks, and nothing else: the event stream of a run and its one
typed result (`events`: `RunResult`), messages as keys (`messages`), what a run measures
(`metrics`), the settings table (`settings`), settings dataclasses' fields and the flags made
from them (`fields`), the command line's commands made of those flags (`commands`), bounded caches (`bounded`), CSV cells safe to open in a spreadsheet
(`spreadsheet`), registries, offline checks and a terminal's
progress line. It imports no other part of tlcore.
"""

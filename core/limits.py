"""The limits every input is held to, in one place (docs/limits.md is their table).

Numbers are finite; sizes are bounded; anything over a limit is a problem with its key
path, found before any work starts. The expression language's own limits live in
`omniroute.grammar` (MAX_SOURCE_LENGTH, MAX_DEPTH, MAX_PATH_LENGTH, MAX_NUMBER_LENGTH,
MAX_ARRAY_LENGTH) and are repeated in the table.
"""

from __future__ import annotations

#: Bytes of one deployment, scenario or workload file.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Nesting of mappings and lists in a file (the deepest real file nests about 8).
MAX_NESTING = 64
#: Largest whole number accepted anywhere (2**53: exact in JSON and as a float).
MAX_INTEGER = 2**53
#: Longest duration, in seconds (100 years of 365.25 days).
MAX_DURATION = 100 * 365.25 * 86_400
#: Highest arrival rate of one traffic entry, per second.
MAX_RATE = 1_000.0
#: Agents a roster may expand to (`count` included).
MAX_AGENTS = 100_000
#: Events a scenario may expand to (`every`/`count` streams included).
MAX_EVENTS = 1_000_000
#: Arrivals a workload may imply (the sum over traffic of rate × duration).
MAX_ARRIVALS = 10_000_000

# --- the engine: no input may make it loop without the clock moving ----------------------

#: Routing passes after one event, beyond ten per waiting task (each pass that goes on
#: offers a task or moves one along its workflow, so a real event needs far fewer).
MAX_ROUTING_PASSES = 1_000
#: Timers fired at one instant, beyond ten per timer already due then (a timer that keeps
#: setting itself at the current time would otherwise keep the clock where it is).
MAX_TIMERS_AT_ONE_INSTANT = 10_000

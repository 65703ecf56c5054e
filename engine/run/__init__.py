"""Planning and applying over time: what a run of a shop reads, decides, writes and remembers.

``planner`` reads a shop's changed records (incremental, by cursor) into a World and decides
them in apply order; ``plan`` is the Plan record with its JSON form and ``render`` its text
and JSON output (computing nothing); ``apply`` executes a plan's decisions through the
connectors' writers; ``sync`` is one run of one shop (read, plan, apply, cursors, run log);
``state`` is the state store (links, cursors, intents, leases, run log) on SQLite or
PostgreSQL; ``schedule`` runs shops on cron with leases and retries; ``countries``
initialises per-country setups in the config file.

May import: ``decide``, ``rules``, ``config`` and the shared top-level modules. Never imports
``cli``.
"""

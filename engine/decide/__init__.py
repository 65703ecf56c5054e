"""Per-record decisions: one typed Decision for each customer or order and direction.

``world`` holds the records of a run with the indexes the facts read (e-mail, phone, links);
``enrich`` computes a record's facts from it, helped by ``names`` (name sources) and
``phones`` (E.164 parsing and uniqueness); ``engine`` (the :class:`Engine`) asks the compiled
rules which rules fire and turns them into a Decision. ``ruletest`` runs the YAML rule tests
(``custsync rules test``) through the same engine on a small world.

May import: ``rules`` and the shared top-level modules. Never imports ``run`` or ``cli``.
"""

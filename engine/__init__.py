"""custsync's engine, laid out as the pipeline it runs, top to bottom.

* ``cli/``: the ``custsync`` command, one module per command group;
* ``run/``: planning and applying over time: read a shop's changes, plan, apply, remember
  (state store, cursors, leases, run log), schedule;
* ``decide/``: one Decision per record and direction: the World's indexes, facts (enrich,
  names, phones), the decide Engine, the YAML rule tests;
* ``rules/``: the rule language: YAML with positions, rule model, vocabulary, validation and
  diagnostics, compile to durable-rules, evaluate;
* ``config``: the configuration file (custsync.yaml), read through ``rules``' loader;
* the shared vocabulary every layer uses: ``model`` (records), ``ports`` (the connectors'
  interfaces), ``errors``, ``exitcodes``, ``masking``, ``registry`` (connectors by URL
  scheme), ``resources`` (shipped rules and schemas), ``clock``.

A module imports its own layer and those below it, never one above (tests/test_layering.py).
"""

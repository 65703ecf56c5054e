"""The rule language: everything from a YAML file on disk to the rules that fire for a record.

``load`` reads YAML keeping the line and column of every node; ``rulefile`` is the typed rule
model and the merge of rule folders into a RuleSet; ``vocabulary`` names the decisions,
actions, parameters and facts (the single source of truth the schemas are made from);
``validate`` and ``diagnostics`` check rule files (JSON Schema plus semantic checks) and
report ``file:line:col`` diagnostics; ``compile`` turns a RuleSet into durable-rules rulesets
and ``evaluate`` (the only module that imports ``durable``) says which rules fire for a dict
of facts.

May import: the shared modules at the top of ``custsync.engine`` (model, errors, resources,
...). Never imports ``decide``, ``run``, ``config`` or ``cli``.
"""

"""`make changes`: what a change does to every stack of every stage, offline, before it is merged.

BASE (a git ref) and the working tree are synthesized (`assemblies`, cached by commit) and compared
template by template with the CDK's own diff engine (`report`); the report goes to
`reports/changes/<run>/changes.{md,html,json}`.
"""

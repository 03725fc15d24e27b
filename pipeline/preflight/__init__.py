"""`make preflight`: the read-only check of an account before the first push.

Offline, the placeholders of `stages/config.py` that must be replaced, each with the line to edit
(`placeholders`). With credentials, what a first deployment needs of the account and cannot create
itself: the CDK bootstrap and its trust, the repository connection, the hosted zone and its delegation,
the secrets the stacks read, the quotas the stage fills, and no leftover of an earlier deployment under a
name the stacks create (`checks`). Nothing here creates, changes or deletes anything.

    python -m pipeline.preflight --env staging|prod|pipeline|all [--offline]
"""

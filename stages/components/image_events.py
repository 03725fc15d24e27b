"""EventBridge patterns for the images buckets' `Object Created` events (docs/design.md: "How the service learns")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import aws_events as events


def objects_created(bucket_names: Mapping[str, str], folders: Sequence[str]) -> events.EventPattern:
    """`Object Created` in the images buckets, under `{privacy}/{folder}/` of each bucket's own privacy.

    One alternative per bucket (`$or`), so an object under the other privacy's prefix (which the API never
    writes) matches nothing. The buckets send their events to the default bus (EventBridge notifications
    are switched on in the buckets themselves).
    """
    return events.EventPattern(
        source=["aws.s3"],
        detail_type=["Object Created"],
        detail={
            "$or": [
                {
                    "bucket": {"name": [bucket_name]},
                    "object": {"key": [{"prefix": f"{privacy}/{folder}/"} for folder in folders]},
                }
                for privacy, bucket_name in bucket_names.items()
            ]
        },
    )

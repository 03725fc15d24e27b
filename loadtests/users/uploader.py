"""An uploader: generate -> POST to S3 -> confirm -> poll media until the rendition is served.

The time from S3 accepting the original to the API serving the rendition is recorded as its own entry,
`time to rendition` (the compressor's and the event worker's latency, end to end). Every fifth upload
or so, the uploader also deletes one of its earlier images.
"""

from __future__ import annotations

import random

from locust import between, task

from loadtests.common.api import Group
from loadtests.common.personas import UPLOADER
from loadtests.users.base import ApiUser


class Uploader(ApiUser):
    persona = "uploader"
    weight = UPLOADER.weight
    wait_time = between(UPLOADER.min_wait_s, UPLOADER.max_wait_s)

    def on_start(self) -> None:
        self.mine: list[str] = []
        self.sign_in()

    @task
    def upload_and_wait(self) -> None:
        upload = self.upload("public" if random.random() < 0.7 else "private")
        if upload is None:
            return
        self.mine.append(upload.image_id)
        uri = self.wait_for_rendition(upload)
        if uri:
            self.fetch_image(uri, Group.IMAGE_RENDITION)
        if len(self.mine) > 3 and random.random() < 0.2:
            self.delete_image(self.mine.pop(0))

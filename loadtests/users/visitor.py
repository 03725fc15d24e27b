"""An anonymous visitor: public feed pages, the images on them, now and then a creator's page."""

from __future__ import annotations

from typing import Any

from locust import between, task

from loadtests.common.personas import VISITOR
from loadtests.users.base import ApiUser


class Visitor(ApiUser):
    persona = "visitor"
    weight = VISITOR.weight
    wait_time = between(VISITOR.min_wait_s, VISITOR.max_wait_s)

    def on_start(self) -> None:
        self.last_page: list[dict[str, Any]] = []

    @task(5)
    def browse(self) -> None:
        self.last_page = self.browse_feed(auth=False, pages=3, images=2)

    @task(2)
    def creator_page(self) -> None:
        self.visit_creator(self.last_page, auth=False)

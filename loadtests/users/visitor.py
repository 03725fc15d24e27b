"""An anonymous visitor: public feed pages, the images on them, now and then a creator's page."""

from __future__ import annotations

from typing import Any

from locust import between, task

from loadtests.users.base import ApiUser


class Visitor(ApiUser):
    persona = "visitor"
    weight = 6
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.last_page: list[dict[str, Any]] = []

    @task(5)
    def browse(self) -> None:
        self.last_page = self.browse_feed(auth=False, pages=3, images=2)

    @task(2)
    def creator_page(self) -> None:
        self.visit_creator(self.last_page, auth=False)
